//! WebSocket close codes the gateway sends, in two groups: the client
//! should reconnect (with backoff), or should not until it has fixed
//! something (a new token, smaller frames, a slower pace).

/// Why the gateway closes a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// 1000: the client closed, or asked nothing more.
    Normal,
    /// 1007: a text frame was not valid UTF-8 (RFC 6455, 7.4.1).
    InvalidPayload,
    /// 1009: a frame exceeded the hard frame limit (twice the message limit).
    MessageTooBig,
    /// 1011: an unexpected server error.
    InternalError,
    /// 1012: the gateway is shutting down (SIGTERM); jobs keep running,
    /// reconnect and `rpc.subscribe` to get their results.
    ServiceRestart,
    /// 4000: no frame (not even a pong) within the idle timeout.
    HeartbeatTimeout,
    /// 4001: the client did not read its messages; the bounded send queue
    /// overflowed.
    SlowConsumer,
    /// 4400: the client kept sending frames that carry no request (not
    /// JSON, too large, binary).
    InvalidFrames,
    /// 4401: the token expired and no `rpc.auth` refreshed it.
    TokenExpired,
    /// 4429: the client kept sending while rate limited.
    RateLimitAbuse,
}

impl CloseReason {
    /// Every reason, in table order.
    pub const ALL: [CloseReason; 10] = [
        CloseReason::Normal,
        CloseReason::InvalidPayload,
        CloseReason::MessageTooBig,
        CloseReason::InternalError,
        CloseReason::ServiceRestart,
        CloseReason::HeartbeatTimeout,
        CloseReason::SlowConsumer,
        CloseReason::InvalidFrames,
        CloseReason::TokenExpired,
        CloseReason::RateLimitAbuse,
    ];

    /// The close code on the wire.
    pub const fn code(self) -> u16 {
        match self {
            CloseReason::Normal => 1000,
            CloseReason::InvalidPayload => 1007,
            CloseReason::MessageTooBig => 1009,
            CloseReason::InternalError => 1011,
            CloseReason::ServiceRestart => 1012,
            CloseReason::HeartbeatTimeout => 4000,
            CloseReason::SlowConsumer => 4001,
            CloseReason::InvalidFrames => 4400,
            CloseReason::TokenExpired => 4401,
            CloseReason::RateLimitAbuse => 4429,
        }
    }

    /// The close frame's reason text.
    pub const fn text(self) -> &'static str {
        match self {
            CloseReason::Normal => "bye",
            CloseReason::InvalidPayload => "text frame is not valid UTF-8",
            CloseReason::MessageTooBig => "message too big",
            CloseReason::InternalError => "internal error",
            CloseReason::ServiceRestart => "gateway restarting, reconnect",
            CloseReason::HeartbeatTimeout => "heartbeat timeout",
            CloseReason::SlowConsumer => "send queue full",
            CloseReason::InvalidFrames => "too many invalid frames",
            CloseReason::TokenExpired => "token expired",
            CloseReason::RateLimitAbuse => "rate limit exceeded repeatedly",
        }
    }

    /// True when reconnecting as is (with backoff) is the right reaction;
    /// false when the client must change something first.
    pub const fn reconnect(self) -> bool {
        matches!(
            self,
            CloseReason::InternalError
                | CloseReason::ServiceRestart
                | CloseReason::HeartbeatTimeout
                | CloseReason::SlowConsumer
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_grouped() {
        let mut seen = std::collections::HashSet::new();
        for r in CloseReason::ALL {
            assert!(seen.insert(r.code()), "{r:?}");
            assert!(
                r.text().len() <= 123,
                "close reasons must fit a control frame"
            );
        }
        assert!(CloseReason::ServiceRestart.reconnect());
        assert!(!CloseReason::TokenExpired.reconnect());
    }
}
