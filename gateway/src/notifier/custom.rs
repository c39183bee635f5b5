//! The PRD's channel for custom publishers, `job:{jobId}`: what a message
//! there says about the job. (What BullMQ's own writes say is the
//! library's: `bullmq_wire::JobSnapshot`, `bullmq_wire::JobSignal`.)

use bullmq_wire::JobUpdate;
use serde_json::Value;

/// A message on the PRD's channel `job:{jobId}` from a custom publisher:
/// `{"type":"progress","progress":..}` (or `percent`/`data`),
/// `{"type":"result","result":..}`, `{"type":"error","error":..}` (a string,
/// or an object with `message`). Anything else is ignored.
pub fn parse_custom(payload: &str) -> Option<JobUpdate> {
    let v: Value = serde_json::from_str(payload).ok()?;
    custom_update(v)
}

/// [`parse_custom`] of a message already parsed; its fields are moved
/// into the update, not copied.
pub(crate) fn custom_update(v: Value) -> Option<JobUpdate> {
    let Value::Object(mut v) = v else {
        return None;
    };
    let kind = match v.remove("type") {
        Some(Value::String(kind)) => kind,
        _ => return None,
    };
    let mut field = |names: &[&str]| names.iter().find_map(|n| v.remove(*n));
    match kind.as_str() {
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
            let attempts_made = field(&["attemptsMade"])
                .and_then(|a| a.as_i64())
                .unwrap_or(0);
            Some(JobUpdate::Failed {
                reason,
                attempts_made,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
