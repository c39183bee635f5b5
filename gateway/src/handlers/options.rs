//! A call's `options` member becomes BullMQ `JobOptions`: checked,
//! clamped to the server's limits, with the method's defaults and the
//! gateway's retention policy (results survive for re-attach).

use std::time::Duration;

use bullmq_wire::{Backoff, JobOptions, KeepJobs, MAX_PRIORITY};
use serde_json::{Map, Value};

use crate::config::{JobPolicy, MethodConfig};
use crate::protocol::RpcError;

/// The options a client may set.
pub const ALLOWED: [&str; 5] = ["priority", "delay", "attempts", "backoff", "timeout"];

fn int(options: &Map<String, Value>, name: &str) -> Result<Option<i64>, RpcError> {
    match options.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 0 => Ok(Some(n)),
            _ => Err(RpcError::invalid_params(format!(
                "options.{name} must be a non-negative integer"
            ))),
        },
    }
}

/// A count of ms (checked non-negative) as the library's Duration.
fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.unsigned_abs())
}

/// A retention age in seconds (the config checks it is positive).
fn keep_for(secs: i64) -> KeepJobs {
    KeepJobs::younger_than(Duration::from_secs(secs.unsigned_abs()))
}

fn backoff(v: &Value, max_ms: i64) -> Result<Backoff, RpcError> {
    let bad = || {
        RpcError::invalid_params(
            "options.backoff must be a delay in ms or {type: fixed|exponential, delay, jitter?}",
        )
    };
    if let Some(ms) = v.as_i64() {
        if ms < 0 {
            return Err(bad());
        }
        return Ok(Backoff::fixed(millis(ms.min(max_ms))));
    }
    let m = v.as_object().ok_or_else(bad)?;
    if m.keys()
        .any(|k| !matches!(k.as_str(), "type" | "delay" | "jitter"))
    {
        return Err(bad());
    }
    let delay = match m.get("delay") {
        None => 0,
        Some(d) => d.as_i64().filter(|d| *d >= 0).ok_or_else(bad)?.min(max_ms),
    };
    let delay = millis(delay);
    let jitter = match m.get("jitter") {
        None | Some(Value::Null) => None,
        Some(j) => Some(
            j.as_f64()
                .filter(|j| (0.0..=1.0).contains(j))
                .ok_or_else(bad)?,
        ),
    };
    match m.get("type").and_then(Value::as_str) {
        Some("fixed") => Ok(Backoff::Fixed { delay, jitter }),
        Some("exponential") => Ok(Backoff::Exponential { delay, jitter }),
        _ => Err(bad()),
    }
}

/// Builds the options of a job with id `job_id`.
pub fn job_options(
    options: Option<&Map<String, Value>>,
    method: Option<&MethodConfig>,
    policy: &JobPolicy,
    job_id: String,
) -> Result<JobOptions, RpcError> {
    let empty = Map::new();
    let o = options.unwrap_or(&empty);
    if let Some(unknown) = o.keys().find(|k| !ALLOWED.contains(&k.as_str())) {
        return Err(RpcError::invalid_params(format!(
            "unknown option {unknown:?}; allowed: {}",
            ALLOWED.join(", ")
        )));
    }
    let attempts = match int(o, "attempts")? {
        Some(0) => {
            return Err(RpcError::invalid_params(
                "options.attempts must be at least 1",
            ))
        }
        Some(n) => Some(n.min(policy.max_attempts)),
        None => method
            .and_then(|m| m.attempts)
            .map(|n| n.clamp(1, policy.max_attempts)),
    };
    let timeout = match int(o, "timeout")? {
        Some(0) => {
            return Err(RpcError::invalid_params(
                "options.timeout must be at least 1 ms",
            ))
        }
        Some(n) => Some(n.min(policy.max_timeout_ms)),
        None => method
            .and_then(|m| m.timeout_ms)
            .map(|n| n.clamp(1, policy.max_timeout_ms)),
    }
    .map(millis);
    let backoff = match o.get("backoff") {
        None | Some(Value::Null) => None,
        Some(v) => Some(backoff(v, policy.max_backoff_ms)?),
    };
    Ok(JobOptions {
        job_id: Some(job_id),
        priority: int(o, "priority")?.map(|p| p.min(i64::from(MAX_PRIORITY))),
        delay: int(o, "delay")?.map(|d| millis(d.min(policy.max_delay_ms))),
        attempts,
        backoff,
        timeout,
        remove_on_complete: Some(keep_for(policy.keep_completed_secs)),
        remove_on_fail: Some(keep_for(policy.keep_failed_secs)),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> Result<JobOptions, RpcError> {
        let policy = JobPolicy {
            max_attempts: 5,
            max_delay_ms: 1000,
            max_backoff_ms: 100,
            max_timeout_ms: 50,
            ..Default::default()
        };
        job_options(v.as_object(), None, &policy, "j".into())
    }

    #[test]
    fn clamps_to_server_limits() {
        let o = opts(
            json!({"priority": 99_999_999, "delay": 5000, "attempts": 50, "timeout": 999,
                            "backoff": {"type": "exponential", "delay": 10_000}}),
        )
        .unwrap();
        assert_eq!(o.priority, Some(i64::from(MAX_PRIORITY)));
        assert_eq!(o.delay, Some(Duration::from_secs(1)));
        assert_eq!(o.attempts, Some(5));
        assert_eq!(o.timeout, Some(Duration::from_millis(50)));
        assert_eq!(
            o.backoff,
            Some(Backoff::exponential(Duration::from_millis(100)))
        );
        assert_eq!(o.job_id.as_deref(), Some("j"));
        assert!(o.validate().is_ok());
    }

    #[test]
    fn sets_retention_and_method_defaults() {
        let policy = JobPolicy::default();
        let m = MethodConfig {
            timeout_ms: Some(2000),
            attempts: Some(3),
            ..Default::default()
        };
        let o = job_options(None, Some(&m), &policy, "j".into()).unwrap();
        assert_eq!(o.attempts, Some(3));
        assert_eq!(o.timeout, Some(Duration::from_secs(2)));
        assert_eq!(
            o.remove_on_complete,
            Some(KeepJobs::younger_than(Duration::from_secs(3600)))
        );
        assert_eq!(
            o.remove_on_fail,
            Some(KeepJobs::younger_than(Duration::from_secs(3600)))
        );
        assert_eq!(
            opts(json!({"backoff": 30})).unwrap().backoff,
            Some(Backoff::fixed(Duration::from_millis(30)))
        );
    }

    #[test]
    fn rejects_bad_options() {
        for bad in [
            json!({"priority": -1}),
            json!({"delay": "soon"}),
            json!({"attempts": 0}),
            json!({"attempts": 1.5}),
            json!({"timeout": 0}),
            json!({"backoff": {"type": "custom"}}),
            json!({"backoff": {"type": "fixed", "jitter": 2}}),
            json!({"backoff": -5}),
            json!({"removeOnComplete": true}),
        ] {
            let e = opts(bad.clone()).unwrap_err();
            assert_eq!(e.code, -32602, "{bad}");
        }
    }
}
