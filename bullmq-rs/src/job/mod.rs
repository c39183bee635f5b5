//! A job as stored in its Redis hash, and the operations on one job.

mod children;
mod ops;
mod options;
mod state;

use std::collections::HashMap;

use serde_json::Value;

pub use children::{Dependencies, DependencyCounts};
pub use options::{validate_job_id, Backoff, Deduplication, JobOptions, KeepJobs, ParentOnFailure, ParentRef, MAX_PRIORITY};
pub(crate) use options::KeepPolicy;
pub use state::JobState;

use crate::queue::Queue;

/// A job read from Redis. Field names follow BullMQ's `Job`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Job {
    /// The job id.
    pub id: String,
    /// The job name (for the gateway: the method).
    pub name: String,
    /// The job data (JSON).
    pub data: Value,
    /// The options, parsed.
    pub opts: JobOptions,
    /// The options exactly as stored (JSON), including ones this library
    /// does not model.
    pub raw_opts: Value,
    /// Progress as last reported (a number or any JSON), 0 when never set.
    pub progress: Value,
    /// Creation time, ms since the epoch.
    pub timestamp: i64,
    /// The delay of the current or last wait, ms.
    pub delay: i64,
    /// Priority, 0 = none.
    pub priority: i64,
    /// Attempts finished (`atm`).
    pub attempts_made: i64,
    /// Attempts started (`ats`).
    pub attempts_started: i64,
    /// Times the job was found stalled (`stc`).
    pub stalled_counter: i64,
    /// When the last attempt started.
    pub processed_on: Option<i64>,
    /// When it completed or failed for good.
    pub finished_on: Option<i64>,
    /// Name of the worker that last processed it (`pb`).
    pub processed_by: Option<String>,
    /// The last error message.
    pub failed_reason: Option<String>,
    /// The stack traces recorded so far.
    pub stacktrace: Vec<String>,
    /// The result of a completed job.
    pub returnvalue: Option<Value>,
    /// A failure the next worker must apply at once (`defa`).
    pub deferred_failure: Option<String>,
    /// Full key of a flow parent.
    pub parent_key: Option<String>,
    /// The job scheduler that produced this job (`rjk`).
    pub repeat_job_key: Option<String>,
    /// The deduplication id (`deid`).
    pub deduplication_id: Option<String>,
    /// The queue this job belongs to, for the operations in `ops`.
    pub(crate) queue: Queue,
    /// The lock token while a worker of ours processes it.
    pub(crate) token: Option<String>,
}

impl Job {
    /// Builds a job from its hash fields. Numbers are read leniently (any
    /// client's formatting), text that is not JSON in a JSON field is kept
    /// as a JSON string rather than dropped.
    pub(crate) fn from_hash(queue: Queue, id: String, mut h: HashMap<String, String>) -> Self {
        let num = |h: &HashMap<String, String>, k: &str| h.get(k).and_then(|v| parse_number(v));
        let json = |v: String| serde_json::from_str(&v).unwrap_or(Value::String(v));
        let raw_opts = h.remove("opts").map(json).unwrap_or(Value::Object(Default::default()));
        Job {
            opts: JobOptions::from_stored_json(&raw_opts),
            raw_opts,
            data: h.remove("data").map(json).unwrap_or(Value::Object(Default::default())),
            progress: h.remove("progress").map(json).unwrap_or(Value::from(0)),
            timestamp: num(&h, "timestamp").unwrap_or(0),
            delay: num(&h, "delay").unwrap_or(0),
            priority: num(&h, "priority").unwrap_or(0),
            attempts_made: num(&h, "atm").or_else(|| num(&h, "attemptsMade")).unwrap_or(0),
            attempts_started: num(&h, "ats").unwrap_or(0),
            stalled_counter: num(&h, "stc").unwrap_or(0),
            processed_on: num(&h, "processedOn"),
            finished_on: num(&h, "finishedOn"),
            processed_by: h.remove("pb"),
            failed_reason: h.remove("failedReason"),
            stacktrace: h
                .remove("stacktrace")
                .and_then(|s| serde_json::from_str::<Vec<Option<String>>>(&s).ok())
                .map(|v| v.into_iter().flatten().collect())
                .unwrap_or_default(),
            returnvalue: h.remove("returnvalue").map(json),
            deferred_failure: h.remove("defa"),
            parent_key: h.remove("parentKey"),
            repeat_job_key: h.remove("rjk"),
            deduplication_id: h.remove("deid"),
            name: h.remove("name").unwrap_or_default(),
            id,
            queue,
            token: None,
        }
    }

    /// The queue this job belongs to.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The lock token while a worker of this library processes the job.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Attempts allowed in total (at least 1).
    pub fn max_attempts(&self) -> i64 {
        self.opts.attempts.unwrap_or(0).max(1)
    }
}

/// Reads an integer written by any client (`"12"`, `"12.0"`, `"1.2e3"`).
pub(crate) fn parse_number(v: &str) -> Option<i64> {
    v.parse::<i64>().ok().or_else(|| v.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// Turns a flat `[field, value, field, value, ...]` reply into a map.
pub(crate) fn pairs_to_map(flat: Vec<String>) -> HashMap<String, String> {
    let mut map = HashMap::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_from_any_client() {
        assert_eq!(parse_number("1795791213571"), Some(1_795_791_213_571));
        assert_eq!(parse_number("1.795791213571e+12"), Some(1_795_791_213_571));
        assert_eq!(parse_number("3.0"), Some(3));
        assert_eq!(parse_number("x"), None);
    }
}
