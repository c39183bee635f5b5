//! Watching one job, whoever runs it: what a watcher reads of the job's
//! hash to tell its progress and its end (a few fields in one `HMGET`,
//! never the data), and what a notification about the job asks of the
//! watcher, whether it came from Redis' keyspace events on the hash or from
//! the queue's events stream.

use redis::aio::ConnectionLike;
use serde_json::Value;

use crate::error::Result;
use crate::events::EventKind;
use crate::job::parse_number;
use crate::json_text::JsonText;
use crate::keys::JobKey;

/// The hash fields a snapshot reads, in `HMGET` order. Every BullMQ
/// producer sets `timestamp`, so its absence means "no such job".
const FIELDS: [&str; 6] = [
    "timestamp",
    "progress",
    "finishedOn",
    "returnvalue",
    "failedReason",
    "atm",
];

/// A job's progress or end, as a watcher learns of it.
#[derive(Debug, Clone, PartialEq)]
pub enum JobUpdate {
    /// New progress (a number or any JSON).
    Progress(Value),
    /// Completed with this return value, as the job stored it.
    Completed(JsonText),
    /// Failed for good.
    Failed {
        /// BullMQ's `failedReason`.
        reason: String,
        /// Attempts made (`atm`).
        attempts_made: i64,
    },
    /// The job hash was deleted before the job finished.
    Removed,
}

impl JobUpdate {
    /// Completed, failed or removed: nothing follows.
    pub fn is_final(&self) -> bool {
        !matches!(self, JobUpdate::Progress(_))
    }
}

/// What a watcher reads of a job: whether it exists, its progress and its
/// end. Read by [`JobSnapshot::read`], one `HMGET` of six fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobSnapshot {
    exists: bool,
    progress: Option<String>,
    finished_on: Option<String>,
    returnvalue: Option<String>,
    failed_reason: Option<String>,
    attempts_made: Option<String>,
}

impl JobSnapshot {
    /// Reads the job at `key` with one `HMGET` (never its data), on any
    /// connection (a watcher may keep its own).
    pub async fn read<C: ConnectionLike>(con: &mut C, key: &JobKey) -> Result<Self> {
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(key.as_str())
            .arg(&FIELDS[..])
            .query_async(con)
            .await?;
        Ok(Self::from_fields(fields))
    }

    /// From the `HMGET` reply, in [`FIELDS`] order.
    fn from_fields(mut v: Vec<Option<String>>) -> Self {
        v.resize(FIELDS.len(), None);
        let mut it = v.into_iter();
        let mut next = || it.next().flatten();
        let exists = next().is_some();
        JobSnapshot {
            exists,
            progress: next(),
            finished_on: next(),
            returnvalue: next(),
            failed_reason: next(),
            attempts_made: next(),
        }
    }

    /// The job exists.
    pub fn exists(&self) -> bool {
        self.exists
    }

    /// The progress as JSON (text that is not JSON as a string), when any
    /// was reported.
    pub fn progress(&self) -> Option<Value> {
        self.progress.as_deref().map(json_or_string)
    }

    /// The job's end, if it has ended. A finished job with a `returnvalue`
    /// completed (a job that succeeded on a retry keeps the `failedReason`
    /// of its earlier attempts); without one, it failed.
    pub fn end(&self) -> Option<JobUpdate> {
        self.finished_on.as_ref()?;
        Some(match &self.returnvalue {
            Some(rv) => JobUpdate::Completed(JsonText::parse_or_string(rv)),
            None => JobUpdate::Failed {
                reason: self.failed_reason.clone().unwrap_or_default(),
                attempts_made: self
                    .attempts_made
                    .as_deref()
                    .and_then(parse_number)
                    .unwrap_or(0),
            },
        })
    }

    /// What the snapshot tells a watcher: the end when the job has ended,
    /// else its progress when any was reported.
    pub fn latest(&self) -> Option<JobUpdate> {
        self.end()
            .or_else(|| self.progress().map(JobUpdate::Progress))
    }
}

/// Reads JSON, keeping text that is not JSON as a string.
fn json_or_string(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// What a notification about a watched job asks of its watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSignal {
    /// The job changed: read its [`JobSnapshot`] again.
    Changed,
    /// The job is gone.
    Removed,
}

impl JobSignal {
    /// What a keyspace notification on the job's hash means (its payload
    /// is the command's event): BullMQ clients of any language write the
    /// hash with `HSET` on progress and at the end; `del`, `expired` and
    /// `evicted` mean it was removed. Other events say nothing a watcher
    /// needs.
    pub fn from_keyspace(event: &str) -> Option<Self> {
        match event {
            "hset" => Some(JobSignal::Changed),
            "del" | "expired" | "evicted" => Some(JobSignal::Removed),
            _ => None,
        }
    }

    /// What an event of the queue's events stream means for a watcher of
    /// the job it names: `progress`, `completed`, `failed`, `waiting`
    /// (a retry) and `delayed` (a retry after a backoff) change what a
    /// snapshot reads; `removed` ends it. `None` for other events.
    pub fn from_event(kind: &EventKind) -> Option<(&str, Self)> {
        let signal = match kind {
            EventKind::Removed { .. } => JobSignal::Removed,
            EventKind::Progress { .. }
            | EventKind::Completed { .. }
            | EventKind::Failed { .. }
            | EventKind::Waiting { .. }
            | EventKind::Delayed { .. } => JobSignal::Changed,
            _ => return None,
        };
        Some((kind.job_id()?, signal))
    }
}

/// `notify-keyspace-events` with what watching job hashes needs added: `K`
/// (keyspace channels), `h` (hash commands, BullMQ's writes) and `g`
/// (`DEL`, a removal). `None` when `current` already has them (`A` covers
/// every class but not `K`).
pub fn keyspace_flags_for_watching(current: &str) -> Option<String> {
    let has_all_classes = current.contains('A');
    let mut merged = current.to_string();
    for flag in ['K', 'h', 'g'] {
        let covered = current.contains(flag) || (has_all_classes && flag != 'K');
        if !covered {
            merged.push(flag);
        }
    }
    (merged != current).then_some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snap(fields: &[Option<&str>]) -> JobSnapshot {
        JobSnapshot::from_fields(fields.iter().map(|f| f.map(str::to_string)).collect())
    }

    #[test]
    fn a_missing_job_has_no_update() {
        let none = JobSnapshot::from_fields(vec![None; 6]);
        assert_eq!(none, JobSnapshot::default());
        assert!(!none.exists());
        assert_eq!(none.latest(), None);
        // a short reply reads as missing fields, not a panic
        assert!(!JobSnapshot::from_fields(Vec::new()).exists());
    }

    #[test]
    fn a_running_job_reports_its_progress_not_an_earlier_failure() {
        let running = snap(&[
            Some("1"),
            Some("{\"p\":50}"),
            None,
            None,
            Some("first try failed"),
            Some("1"),
        ]);
        assert!(running.exists());
        assert_eq!(running.end(), None);
        assert_eq!(
            running.latest(),
            Some(JobUpdate::Progress(json!({"p": 50})))
        );
        let text = snap(&[Some("1"), Some("half way"), None, None, None, None]);
        assert_eq!(text.progress(), Some(json!("half way")));
        let fresh = snap(&[Some("1"), None, None, None, None, None]);
        assert_eq!(fresh.latest(), None);
    }

    #[test]
    fn a_finished_job_with_a_return_value_completed_even_after_failed_attempts() {
        let done = snap(&[
            Some("1"),
            Some("80"),
            Some("2"),
            Some("{\"ok\":true}"),
            Some("first try failed"),
            Some("2"),
        ]);
        let completed = JobUpdate::Completed(json!({"ok": true}).into());
        assert_eq!(done.end(), Some(completed.clone()));
        assert_eq!(done.latest(), Some(completed));
        let text = snap(&[Some("1"), None, Some("2"), Some("plain"), None, None]);
        assert_eq!(
            text.end(),
            Some(JobUpdate::Completed(json!("plain").into()))
        );
    }

    #[test]
    fn a_finished_job_without_a_return_value_failed() {
        let failed = snap(&[Some("1"), None, Some("2"), None, Some("boom"), Some("3.0")]);
        let end = JobUpdate::Failed {
            reason: "boom".into(),
            attempts_made: 3,
        };
        assert!(end.is_final());
        assert_eq!(failed.end(), Some(end));
        let bare = snap(&[Some("1"), None, Some("2"), None, None, None]);
        assert_eq!(
            bare.end(),
            Some(JobUpdate::Failed {
                reason: String::new(),
                attempts_made: 0
            })
        );
        assert!(!JobUpdate::Progress(json!(1)).is_final());
    }

    #[test]
    fn keyspace_events_that_matter_to_a_watcher() {
        assert_eq!(JobSignal::from_keyspace("hset"), Some(JobSignal::Changed));
        for gone in ["del", "expired", "evicted"] {
            assert_eq!(JobSignal::from_keyspace(gone), Some(JobSignal::Removed));
        }
        assert_eq!(JobSignal::from_keyspace("hincrby"), None);
    }

    #[test]
    fn stream_events_that_matter_to_a_watcher() {
        let id = || "7".to_string();
        let progress = EventKind::Progress {
            job_id: id(),
            data: json!(5),
        };
        assert_eq!(
            JobSignal::from_event(&progress),
            Some(("7", JobSignal::Changed))
        );
        let delayed = EventKind::Delayed {
            job_id: id(),
            delay: 10,
        };
        assert_eq!(
            JobSignal::from_event(&delayed),
            Some(("7", JobSignal::Changed))
        );
        let active = EventKind::Active {
            job_id: id(),
            prev: None,
        };
        assert_eq!(JobSignal::from_event(&active), None);
        assert_eq!(JobSignal::from_event(&EventKind::Drained), None);
    }

    #[test]
    fn adds_only_the_missing_keyspace_flags() {
        assert_eq!(keyspace_flags_for_watching("").as_deref(), Some("Khg"));
        assert_eq!(keyspace_flags_for_watching("Ex").as_deref(), Some("ExKhg"));
        assert_eq!(keyspace_flags_for_watching("KA"), None);
        assert_eq!(keyspace_flags_for_watching("EA").as_deref(), Some("EAK"));
        assert_eq!(keyspace_flags_for_watching("Kgh"), None);
    }
}
