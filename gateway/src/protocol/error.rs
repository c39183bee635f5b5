//! The error code table: JSON-RPC 2.0's reserved codes, then ours in the
//! server range (-32000 to -32099). Every error a client can see is built
//! here, so the table in `docs/protocol.md` has one source.

use serde::Serialize;
use serde_json::{json, Value};

/// Every code the gateway sends, with its number and default message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// -32700: the frame is not JSON.
    ParseError,
    /// -32600: JSON, but not a JSON-RPC 2.0 request (wrong `jsonrpc`,
    /// missing or non-string `method`, bad `id`, empty or oversized batch,
    /// binary frame).
    InvalidRequest,
    /// -32601: unknown service or method.
    MethodNotFound,
    /// -32602: params fail the method's JSON Schema, or a bad `jobId`,
    /// `options` or `ack`.
    InvalidParams,
    /// -32603: a bug or an unexpected reply; not the client's fault.
    InternalError,
    /// -32000: `rpc.auth` got a token that does not verify.
    Unauthorized,
    /// -32001: the per-user or per-IP rate limit is exhausted.
    RateLimited,
    /// -32002: the frame is larger than the configured maximum.
    MessageTooLarge,
    /// -32003: no such job, or not one of yours (the two are indistinguishable).
    NotFound,
    /// -32004: Redis could not be reached; the call was not accepted.
    RedisUnavailable,
    /// -32005: this connection already waits for its maximum of jobs.
    TooManyInFlight,
    /// -32010: the job failed for good.
    JobFailed,
    /// -32011: the job was removed (cancelled, or cleaned) before it finished.
    JobRemoved,
    /// -32012: the client unsubscribed from the job before it finished.
    Unsubscribed,
}

impl ErrorCode {
    /// Every code, in table order.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::ParseError,
        ErrorCode::InvalidRequest,
        ErrorCode::MethodNotFound,
        ErrorCode::InvalidParams,
        ErrorCode::InternalError,
        ErrorCode::Unauthorized,
        ErrorCode::RateLimited,
        ErrorCode::MessageTooLarge,
        ErrorCode::NotFound,
        ErrorCode::RedisUnavailable,
        ErrorCode::TooManyInFlight,
        ErrorCode::JobFailed,
        ErrorCode::JobRemoved,
        ErrorCode::Unsubscribed,
    ];

    /// The number on the wire.
    pub const fn code(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::InternalError => -32603,
            ErrorCode::Unauthorized => -32000,
            ErrorCode::RateLimited => -32001,
            ErrorCode::MessageTooLarge => -32002,
            ErrorCode::NotFound => -32003,
            ErrorCode::RedisUnavailable => -32004,
            ErrorCode::TooManyInFlight => -32005,
            ErrorCode::JobFailed => -32010,
            ErrorCode::JobRemoved => -32011,
            ErrorCode::Unsubscribed => -32012,
        }
    }

    /// The message sent when there is nothing more specific to say.
    pub const fn message(self) -> &'static str {
        match self {
            ErrorCode::ParseError => "Parse error",
            ErrorCode::InvalidRequest => "Invalid Request",
            ErrorCode::MethodNotFound => "Method not found",
            ErrorCode::InvalidParams => "Invalid params",
            ErrorCode::InternalError => "Internal error",
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::RateLimited => "Rate limited",
            ErrorCode::MessageTooLarge => "Message too large",
            ErrorCode::NotFound => "Job not found",
            ErrorCode::RedisUnavailable => "Redis unavailable",
            ErrorCode::TooManyInFlight => "Too many jobs in flight",
            ErrorCode::JobFailed => "Job failed",
            ErrorCode::JobRemoved => "Job removed",
            ErrorCode::Unsubscribed => "Unsubscribed",
        }
    }
}

/// A JSON-RPC error object: `{"code", "message", "data"?}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RpcError {
    /// The number from [`ErrorCode::code`].
    pub code: i64,
    /// A short sentence; for the reserved codes, the standard message
    /// followed by the detail.
    pub message: String,
    /// Machine-readable detail, per code (see `docs/protocol.md`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with the code's default message.
    pub fn new(code: ErrorCode) -> Self {
        RpcError {
            code: code.code(),
            message: code.message().to_string(),
            data: None,
        }
    }

    /// An error whose message is the default one, a colon and `detail`.
    pub fn with_detail(code: ErrorCode, detail: impl std::fmt::Display) -> Self {
        RpcError {
            code: code.code(),
            message: format!("{}: {detail}", code.message()),
            data: None,
        }
    }

    /// Adds `data`.
    pub fn data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// -32700.
    pub fn parse_error(detail: impl std::fmt::Display) -> Self {
        Self::with_detail(ErrorCode::ParseError, detail)
    }

    /// -32600.
    pub fn invalid_request(detail: impl std::fmt::Display) -> Self {
        Self::with_detail(ErrorCode::InvalidRequest, detail)
    }

    /// -32601, naming the method.
    pub fn method_not_found(method: &str) -> Self {
        Self::with_detail(ErrorCode::MethodNotFound, method)
    }

    /// -32602.
    pub fn invalid_params(detail: impl std::fmt::Display) -> Self {
        Self::with_detail(ErrorCode::InvalidParams, detail)
    }

    /// -32603; the detail goes to the log, not to the client.
    pub fn internal() -> Self {
        Self::new(ErrorCode::InternalError)
    }

    /// -32001 with how long to wait before the bucket has a token again.
    pub fn rate_limited(retry_after_ms: u64) -> Self {
        Self::new(ErrorCode::RateLimited).data(json!({ "retryAfterMs": retry_after_ms }))
    }

    /// -32002 with the limit.
    pub fn message_too_large(size: usize, max: usize) -> Self {
        Self::with_detail(
            ErrorCode::MessageTooLarge,
            format!("{size} bytes, the maximum is {max}"),
        )
        .data(json!({ "maxBytes": max }))
    }

    /// -32003.
    pub fn not_found(job_id: &str) -> Self {
        Self::new(ErrorCode::NotFound).data(json!({ "jobId": job_id }))
    }

    /// -32004: retry later, nothing was enqueued.
    pub fn redis_unavailable() -> Self {
        Self::new(ErrorCode::RedisUnavailable).data(json!({ "retryable": true }))
    }

    /// -32004 for an add the master has but fewer replicas than
    /// `replica_acks` confirmed in time: retryable, but the job exists and
    /// will run (`enqueued`), so a retry must carry the same `jobId` key
    /// (it then finds the job instead of adding a second one).
    pub fn not_replicated(detail: impl std::fmt::Display) -> Self {
        Self::with_detail(ErrorCode::RedisUnavailable, detail)
            .data(json!({ "retryable": true, "enqueued": true }))
    }

    /// -32005 with the limit.
    pub fn too_many_in_flight(limit: usize) -> Self {
        Self::new(ErrorCode::TooManyInFlight).data(json!({ "limit": limit }))
    }

    /// -32010: how a failed job is reported; `data` carries BullMQ's
    /// `failedReason` and `attemptsMade`.
    pub fn job_failed(failed_reason: &str, attempts_made: i64) -> Self {
        Self::new(ErrorCode::JobFailed)
            .data(json!({ "failedReason": failed_reason, "attemptsMade": attempts_made }))
    }

    /// -32000.
    pub fn unauthorized(detail: impl std::fmt::Display) -> Self {
        Self::with_detail(ErrorCode::Unauthorized, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_in_their_ranges() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.code()), "{c:?} reuses {}", c.code());
            let reserved = (-32768..=-32600).contains(&c.code());
            let server = (-32099..=-32000).contains(&c.code());
            assert!(reserved || server, "{c:?}");
        }
    }

    #[test]
    fn serializes_without_empty_data() {
        let e = RpcError::method_not_found("x.y");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"code": -32601, "message": "Method not found: x.y"})
        );
        assert_eq!(
            RpcError::redis_unavailable().data,
            Some(json!({"retryable": true}))
        );
    }
}
