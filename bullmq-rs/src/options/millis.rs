//! The wire counts time in whole milliseconds (and `KeepJobs` ages in whole
//! seconds); the Rust API uses [`Duration`]. These are the only conversions.

use std::time::Duration;

use serde_json::Value;

/// A duration as the wire's whole milliseconds (sub-millisecond parts are
/// dropped; anything past `u64::MAX` ms saturates).
pub(crate) fn to_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// [`to_ms`] for the scripts, which take signed integers.
pub(crate) fn to_ms_i64(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds read from any client; a negative count reads as zero.
pub(crate) fn from_ms(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A stored number of ms (any JSON number, truncated to whole ms).
pub(crate) fn ms_from_json(v: &Value) -> Option<Duration> {
    as_i64(v).map(from_ms)
}

/// A stored number of whole seconds.
pub(crate) fn secs_from_json(v: &Value) -> Option<Duration> {
    as_i64(v).map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
}

/// An integer written by any client (`3`, `3.0`, `3e0`).
pub(crate) fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_at_whole_milliseconds() {
        assert_eq!(to_ms(Duration::from_micros(1_999)), 1);
        assert_eq!(to_ms(Duration::MAX), u64::MAX);
        assert_eq!(to_ms_i64(Duration::MAX), i64::MAX);
        assert_eq!(from_ms(-5), Duration::ZERO);
        assert_eq!(
            ms_from_json(&json!(250.7)),
            Some(Duration::from_millis(250))
        );
        assert_eq!(secs_from_json(&json!(60)), Some(Duration::from_secs(60)));
        assert_eq!(ms_from_json(&json!("x")), None);
    }
}
