//! A job as stored in its Redis hash, and the operations on one job.

#[cfg(feature = "testing")]
mod builder;
mod children;
mod dependency_pages;
mod ops;
mod read;
mod recorded;
mod typed_data;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::options::millis::from_ms;
use crate::options::{JobOptions, ParentRef};
use crate::queue::Queue;
#[cfg(feature = "testing")]
pub use builder::JobBuilder;
pub use children::{Dependencies, DependencyCounts};
pub use dependency_pages::{DependenciesPage, DependencyPages, Page, PageRequest};
pub use recorded::Recorded;
pub use typed_data::DataError;

/// A job read from Redis. Field names follow BullMQ's `Job`.
#[derive(Clone)]
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
    /// The delay of the current or last wait.
    pub delay: Duration,
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
    /// Where progress and logs go instead of Redis, for a job made by
    /// `Job::builder` (feature `testing`).
    pub(crate) recorded: Option<std::sync::Arc<Recorded>>,
    /// Told of each progress Redis took, for the watchers of the worker
    /// that fetched the job (`Worker::events`).
    pub(crate) on_progress: Option<ProgressHook>,
    /// Progress is also published on `job:{jobId}` (a worker with
    /// `publish_results` fetched the job).
    pub(crate) publish_progress: bool,
}

/// A callback a job calls with its id and each progress it reports.
pub(crate) type ProgressHook = std::sync::Arc<dyn Fn(&str, &Value) + Send + Sync>;

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("data", &self.data)
            .field("opts", &self.opts)
            .field("progress", &self.progress)
            .field("attempts_made", &self.attempts_made)
            .field("attempts_started", &self.attempts_started)
            .field("processed_on", &self.processed_on)
            .field("finished_on", &self.finished_on)
            .field("failed_reason", &self.failed_reason)
            .field("returnvalue", &self.returnvalue)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl Job {
    /// Builds a job from its hash fields. Numbers are read leniently (any
    /// client's formatting), text that is not JSON in a JSON field is kept
    /// as a JSON string rather than dropped.
    pub(crate) fn from_hash(queue: Queue, id: String, h: HashMap<String, String>) -> Self {
        Job::from_fields(queue, id, h)
    }

    /// `from_hash` for fields in any order, read in one pass (a worker builds
    /// one job per fetched hash; no map is built for it).
    pub(crate) fn from_fields<K: AsRef<str>>(
        queue: Queue,
        id: String,
        fields: impl IntoIterator<Item = (K, String)>,
    ) -> Self {
        let json = |v: String| serde_json::from_str(&v).unwrap_or(Value::String(v));
        let mut job = Job {
            id,
            name: String::new(),
            data: Value::Object(Default::default()),
            opts: JobOptions::default(),
            raw_opts: Value::Object(Default::default()),
            progress: Value::from(0),
            timestamp: 0,
            delay: Duration::ZERO,
            priority: 0,
            attempts_made: 0,
            attempts_started: 0,
            stalled_counter: 0,
            processed_on: None,
            finished_on: None,
            processed_by: None,
            failed_reason: None,
            stacktrace: Vec::new(),
            returnvalue: None,
            deferred_failure: None,
            parent_key: None,
            repeat_job_key: None,
            deduplication_id: None,
            queue,
            token: None,
            recorded: None,
            on_progress: None,
            publish_progress: false,
        };
        // `atm` wins over BullMQ's older `attemptsMade`, whatever the order
        let (mut atm, mut attempts_made) = (None, None);
        for (field, value) in fields {
            match field.as_ref() {
                "name" => job.name = value,
                "data" => job.data = json(value),
                "opts" => job.raw_opts = json(value),
                "progress" => job.progress = json(value),
                "timestamp" => job.timestamp = parse_number(&value).unwrap_or(0),
                "delay" => job.delay = from_ms(parse_number(&value).unwrap_or(0)),
                "priority" => job.priority = parse_number(&value).unwrap_or(0),
                "atm" => atm = parse_number(&value),
                "attemptsMade" => attempts_made = parse_number(&value),
                "ats" => job.attempts_started = parse_number(&value).unwrap_or(0),
                "stc" => job.stalled_counter = parse_number(&value).unwrap_or(0),
                "processedOn" => job.processed_on = parse_number(&value),
                "finishedOn" => job.finished_on = parse_number(&value),
                "pb" => job.processed_by = Some(value),
                "failedReason" => job.failed_reason = Some(value),
                "stacktrace" => {
                    job.stacktrace = serde_json::from_str::<Vec<Option<String>>>(&value)
                        .map(|v| v.into_iter().flatten().collect())
                        .unwrap_or_default()
                }
                "returnvalue" => job.returnvalue = Some(json(value)),
                "defa" => job.deferred_failure = Some(value),
                "parentKey" => job.parent_key = Some(value),
                "rjk" => job.repeat_job_key = Some(value),
                "deid" => job.deduplication_id = Some(value),
                _ => {}
            }
        }
        job.attempts_made = atm.or(attempts_made).unwrap_or(0);
        job.opts = JobOptions::from_stored_json(&job.raw_opts);
        job
    }

    /// The queue this job belongs to.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The lock token while a worker of this library processes the job.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// How a child added by this job's handler names it as its parent
    /// ([`JobOptions::parent`]).
    pub fn parent_ref(&self) -> ParentRef {
        ParentRef {
            id: self.id.clone(),
            queue: self.queue.keys().qualified_name(),
        }
    }

    /// Attempts allowed in total (at least 1).
    pub fn max_attempts(&self) -> i64 {
        self.opts.attempts.unwrap_or(0).max(1)
    }
}

impl ParentRef {
    /// The parent `job` (typically the job a handler is running); the same
    /// as [`Job::parent_ref`].
    pub fn of(job: &Job) -> Self {
        job.parent_ref()
    }
}

/// Reads an integer written by any client (`"12"`, `"12.0"`, `"1.2e3"`).
pub(crate) fn parse_number(v: &str) -> Option<i64> {
    v.parse::<i64>().ok().or_else(|| {
        v.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f as i64)
    })
}

/// Pairs up a flat `[field, value, field, value, ...]` reply.
pub(crate) fn pairs(flat: Vec<String>) -> impl Iterator<Item = (String, String)> {
    let mut it = flat.into_iter();
    std::iter::from_fn(move || Some((it.next()?, it.next()?)))
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
