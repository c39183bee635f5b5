//! What the notifier reads of a job hash (a few fields, never the data),
//! and how that becomes an update for the sockets watching the job.

use serde_json::Value;

/// The job-hash fields the notifier reads, in `HMGET` order. `timestamp`
/// is set by every BullMQ producer, so its absence means "no such job".
pub const FIELDS: [&str; 6] = [
    "timestamp",
    "progress",
    "finishedOn",
    "returnvalue",
    "failedReason",
    "atm",
];

/// A job's end or progress, as pushed to sockets.
#[derive(Debug, Clone, PartialEq)]
pub enum JobUpdate {
    /// New progress (any JSON).
    Progress(Value),
    /// Completed with this result.
    Completed(Value),
    /// Failed for good.
    Failed {
        /// BullMQ's `failedReason` (or the custom publisher's error).
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

/// The fields read by `HMGET`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The hash exists.
    pub exists: bool,
    /// Raw `progress`.
    pub progress: Option<String>,
    /// Raw `finishedOn`.
    pub finished_on: Option<String>,
    /// Raw `returnvalue`.
    pub returnvalue: Option<String>,
    /// Raw `failedReason`.
    pub failed_reason: Option<String>,
    /// Raw `atm`.
    pub attempts_made: Option<String>,
}

impl Snapshot {
    /// From the `HMGET` reply, in [`FIELDS`] order.
    pub fn from_fields(mut v: Vec<Option<String>>) -> Self {
        v.resize(FIELDS.len(), None);
        let mut it = v.into_iter();
        let mut next = || it.next().flatten();
        let exists = next().is_some();
        Snapshot {
            exists,
            progress: next(),
            finished_on: next(),
            returnvalue: next(),
            failed_reason: next(),
            attempts_made: next(),
        }
    }

    /// The job's end, if it has ended. A finished job with a `returnvalue`
    /// completed (a retried job keeps the `failedReason` of earlier
    /// attempts); without one, it failed.
    pub fn final_update(&self) -> Option<JobUpdate> {
        self.finished_on.as_ref()?;
        Some(match &self.returnvalue {
            Some(rv) => JobUpdate::Completed(json_or_string(rv)),
            None => JobUpdate::Failed {
                reason: self.failed_reason.clone().unwrap_or_default(),
                attempts_made: self
                    .attempts_made
                    .as_deref()
                    .and_then(parse_int)
                    .unwrap_or(0),
            },
        })
    }

    /// The progress as JSON, when any was reported.
    pub fn progress_value(&self) -> Option<Value> {
        self.progress.as_deref().map(json_or_string)
    }
}

/// Reads JSON, keeping text that is not JSON as a string.
pub fn json_or_string(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// Integers as any client writes them (`3`, `3.0`).
fn parse_int(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().or_else(|| {
        s.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f as i64)
    })
}

/// A message on the PRD's channel `job:{jobId}` from a custom publisher:
/// `{"type":"progress","progress":..}` (or `percent`/`data`),
/// `{"type":"result","result":..}`, `{"type":"error","error":..}` (a string,
/// or an object with `message`). Anything else is ignored.
pub fn parse_custom(payload: &str) -> Option<JobUpdate> {
    let v: Value = serde_json::from_str(payload).ok()?;
    let field = |names: &[&str]| names.iter().find_map(|n| v.get(*n)).cloned();
    match v.get("type")?.as_str()? {
        "progress" => Some(JobUpdate::Progress(
            field(&["progress", "percent", "data"]).unwrap_or(Value::Null),
        )),
        "result" => Some(JobUpdate::Completed(
            field(&["result", "data"]).unwrap_or(Value::Null),
        )),
        "error" => {
            let err = field(&["error", "message"]).unwrap_or(Value::Null);
            let reason = match &err {
                Value::String(s) => s.clone(),
                Value::Object(o) => o
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| err.to_string()),
                other => other.to_string(),
            };
            let attempts_made = v.get("attemptsMade").and_then(Value::as_i64).unwrap_or(0);
            Some(JobUpdate::Failed {
                reason,
                attempts_made,
            })
        }
        _ => None,
    }
}

/// `notify-keyspace-events` with what the notifier needs added: `K`
/// (keyspace channels), `h` (hash commands) and `g` (DEL). `None` when the
/// current value already has them.
pub fn merge_keyspace_flags(current: &str) -> Option<String> {
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

    fn snap(fields: &[Option<&str>]) -> Snapshot {
        Snapshot::from_fields(fields.iter().map(|f| f.map(str::to_string)).collect())
    }

    #[test]
    fn reads_the_end_of_a_job() {
        assert_eq!(Snapshot::from_fields(vec![None; 6]), Snapshot::default());
        let running = snap(&[
            Some("1"),
            Some("{\"p\":50}"),
            None,
            None,
            Some("first try failed"),
            Some("1"),
        ]);
        assert!(running.exists);
        assert_eq!(running.final_update(), None);
        assert_eq!(running.progress_value(), Some(json!({"p": 50})));
        let done = snap(&[
            Some("1"),
            None,
            Some("2"),
            Some("{\"ok\":true}"),
            Some("first try failed"),
            Some("2"),
        ]);
        assert_eq!(
            done.final_update(),
            Some(JobUpdate::Completed(json!({"ok": true})))
        );
        let failed = snap(&[Some("1"), None, Some("2"), None, Some("boom"), Some("3.0")]);
        assert_eq!(
            failed.final_update(),
            Some(JobUpdate::Failed {
                reason: "boom".into(),
                attempts_made: 3
            })
        );
        assert_eq!(json_or_string("not json"), json!("not json"));
    }

    #[test]
    fn parses_custom_publisher_messages() {
        assert_eq!(
            parse_custom(r#"{"type":"progress","percent":40}"#),
            Some(JobUpdate::Progress(json!(40)))
        );
        assert_eq!(
            parse_custom(r#"{"type":"result","result":{"a":1}}"#),
            Some(JobUpdate::Completed(json!({"a": 1})))
        );
        assert_eq!(
            parse_custom(r#"{"type":"error","error":{"message":"bad"}}"#),
            Some(JobUpdate::Failed {
                reason: "bad".into(),
                attempts_made: 0
            })
        );
        assert_eq!(parse_custom(r#"{"type":"other"}"#), None);
        assert_eq!(parse_custom("nope"), None);
    }

    #[test]
    fn merges_keyspace_flags() {
        assert_eq!(merge_keyspace_flags("").as_deref(), Some("Khg"));
        assert_eq!(merge_keyspace_flags("Ex").as_deref(), Some("ExKhg"));
        assert_eq!(merge_keyspace_flags("KA"), None);
        assert_eq!(merge_keyspace_flags("EA").as_deref(), Some("EAK"));
        assert_eq!(merge_keyspace_flags("Kgh"), None);
    }
}
