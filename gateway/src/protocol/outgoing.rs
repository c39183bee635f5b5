//! What the gateway sends: responses (one per request with an id) and
//! notifications (`rpc.accepted`, `rpc.progress`). Only this module turns
//! them into text.

use bullmq_wire::JsonText;
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use super::error::RpcError;
use super::incoming::Id;

/// Serializes as the literal `"2.0"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Version;

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("2.0")
    }
}

/// Success or error, flattened into the response object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Outcome {
    /// `"result": ...` (a job's return value is forwarded as the text the
    /// job stored)
    #[serde(rename = "result")]
    Result(JsonText),
    /// `"error": {...}`
    #[serde(rename = "error")]
    Error(RpcError),
}

/// `{"jsonrpc":"2.0","id":...,"jobId"?:...,"result"|"error":...}`. The
/// `jobId` member is our extension, present when the request is about a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    /// Always `"2.0"`.
    pub jsonrpc: Version,
    /// The request's id.
    pub id: Id,
    /// The job the request created or watched.
    #[serde(rename = "jobId", skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Response {
    /// A success.
    pub fn ok(id: Id, result: Value) -> Self {
        Self::ok_text(id, result.into())
    }

    /// A success whose result is JSON text already (a job's return value).
    pub fn ok_text(id: Id, result: JsonText) -> Self {
        Response {
            jsonrpc: Version,
            id,
            job_id: None,
            outcome: Outcome::Result(result),
        }
    }

    /// An error.
    pub fn err(id: Id, error: RpcError) -> Self {
        Response {
            jsonrpc: Version,
            id,
            job_id: None,
            outcome: Outcome::Error(error),
        }
    }

    /// The same response about `job_id`.
    pub fn for_job(mut self, job_id: impl Into<String>) -> Self {
        self.job_id = Some(job_id.into());
        self
    }

    /// True for an error response.
    pub fn is_error(&self) -> bool {
        matches!(self.outcome, Outcome::Error(_))
    }
}

/// `{"jsonrpc":"2.0","method":...,"params":...}` sent by the gateway.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// Always `"2.0"`.
    pub jsonrpc: Version,
    /// `rpc.accepted` or `rpc.progress`.
    pub method: &'static str,
    /// The payload.
    pub params: Value,
}

impl Notification {
    /// `rpc.accepted {id, jobId}`: the job is enqueued (sent when the
    /// request had `ack: true`).
    pub fn accepted(id: &Id, job_id: &str) -> Self {
        Notification {
            jsonrpc: Version,
            method: "rpc.accepted",
            params: json!({ "id": id, "jobId": job_id }),
        }
    }

    /// `rpc.progress {id, jobId, progress}`.
    pub fn progress(id: &Id, job_id: &str, progress: &Value) -> Self {
        Notification {
            jsonrpc: Version,
            method: "rpc.progress",
            params: json!({ "id": id, "jobId": job_id, "progress": progress }),
        }
    }
}

/// Text of a response or notification.
pub fn to_text<T: Serialize>(message: &T) -> String {
    // Serializing our own types to a String cannot fail: every map key is a
    // string and there are no custom serializers that error.
    serde_json::to_string(message).unwrap_or_else(|_| String::from("{}"))
}
