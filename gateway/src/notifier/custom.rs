//! The PRD's channel for custom publishers, `job:{jobId}`: what a message
//! there says about the job. (What BullMQ's own writes say is the
//! library's: `bullmq_wire::JobSnapshot`, `bullmq_wire::JobSignal`.)

use std::borrow::Cow;

use bullmq_wire::{JobUpdate, JsonText};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// A message on the PRD's channel `job:{jobId}` from a custom publisher:
/// `{"type":"progress","progress":..}` (or `percent`/`data`),
/// `{"type":"result","result":..}`, `{"type":"error","error":..}` (a string,
/// or an object with `message`). Anything else is ignored.
pub fn parse_custom(payload: &str) -> Option<JobUpdate> {
    match serde_json::from_str::<Message<'_>>(payload) {
        Ok(message) => message.update(),
        // not an object, or one that names a member twice (the last wins)
        Err(_) => custom_update(serde_json::from_str(payload).ok()?),
    }
}

/// The updates of a message on a gateway's reply channel (published
/// mode): one message, or the JSON array of those a worker's script call
/// published at once, each naming its job. `each` gets the job id and the
/// update of every message that has both.
pub(crate) fn parse_replies(payload: &str, mut each: impl FnMut(&str, JobUpdate)) {
    let mut one = |message: Message<'_>| {
        if let Some(job_id) = message.job_id.clone() {
            if let Some(update) = message.update() {
                each(&job_id, update);
            }
        }
    };
    // what our scripts publish is read without building a JSON tree: the
    // result is kept as the text the worker wrote, for the client's answer
    let typed = if payload.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<Message<'_>>>(payload)
            .map(|all| all.into_iter().for_each(&mut one))
    } else {
        serde_json::from_str::<Message<'_>>(payload).map(&mut one)
    };
    if typed.is_ok() {
        return;
    }
    let tree = |message: Value| {
        let job_id = message
            .get("jobId")
            .and_then(Value::as_str)
            .map(str::to_string)?;
        Some((job_id, custom_update(message)?))
    };
    let updates: Vec<(String, JobUpdate)> = match serde_json::from_str::<Value>(payload) {
        Ok(Value::Array(messages)) => messages.into_iter().filter_map(tree).collect(),
        Ok(message) => tree(message).into_iter().collect(),
        Err(_) => return,
    };
    for (job_id, update) in updates {
        each(&job_id, update);
    }
}

/// The members of a message that mean something, borrowed from its text.
/// A member present with `null` is kept (`Some("null")`), as a tree would.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "jobId", borrow, default)]
    job_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::protocol::present")]
    progress: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "crate::protocol::present")]
    percent: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "crate::protocol::present")]
    data: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "crate::protocol::present")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "crate::protocol::present")]
    error: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "crate::protocol::present")]
    message: Option<&'a RawValue>,
    #[serde(
        rename = "attemptsMade",
        borrow,
        default,
        deserialize_with = "crate::protocol::present"
    )]
    attempts_made: Option<&'a RawValue>,
}

impl Message<'_> {
    fn update(&self) -> Option<JobUpdate> {
        let value = |raw: Option<&RawValue>| {
            raw.and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
                .unwrap_or(Value::Null)
        };
        match self.kind.as_deref()? {
            "progress" => Some(JobUpdate::Progress(value(
                self.progress.or(self.percent).or(self.data),
            ))),
            "result" => Some(JobUpdate::Completed(
                self.result
                    .or(self.data)
                    .map(JsonText::from_raw)
                    .unwrap_or_else(|| Value::Null.into()),
            )),
            "error" => Some(failed(
                value(self.error.or(self.message)),
                value(self.attempts_made).as_i64(),
            )),
            _ => None,
        }
    }
}

/// A final failure from a message's `error` (a string, or an object with
/// `message`) and `attemptsMade`.
fn failed(err: Value, attempts_made: Option<i64>) -> JobUpdate {
    let reason = match &err {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| err.to_string()),
        other => other.to_string(),
    };
    JobUpdate::Failed {
        reason,
        attempts_made: attempts_made.unwrap_or(0),
    }
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
            field(&["result", "data"]).unwrap_or(Value::Null).into(),
        )),
        "error" => {
            let err = field(&["error", "message"]).unwrap_or(Value::Null);
            let attempts_made = field(&["attemptsMade"]).and_then(|a| a.as_i64());
            Some(failed(err, attempts_made))
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
            Some(JobUpdate::Completed(json!({"a": 1}).into()))
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

    fn replies(payload: &str) -> Vec<(String, JobUpdate)> {
        let mut out = Vec::new();
        parse_replies(payload, |id, update| out.push((id.to_string(), update)));
        out
    }

    #[test]
    fn reads_the_reply_channel_one_message_or_an_array_keeping_results_as_written() {
        let result = |text: &str| JobUpdate::Completed(JsonText::parse_or_string(text));
        assert_eq!(
            replies(r#"{"type":"result","jobId":"a","result":{"z":1, "a":[2]}}"#),
            vec![("a".to_string(), result(r#"{"z":1, "a":[2]}"#))]
        );
        assert_eq!(
            replies(
                r#" [{"type":"result","jobId":"a","result":null},
                     {"type":"error","jobId":"b\u0031","error":"boom","attemptsMade":3},
                     {"type":"progress","jobId":"c","progress":{"p":5}},
                     {"type":"result","result":1},
                     {"type":"other","jobId":"d"}]"#
            ),
            vec![
                ("a".to_string(), result("null")),
                (
                    "b1".to_string(),
                    JobUpdate::Failed {
                        reason: "boom".into(),
                        attempts_made: 3
                    }
                ),
                ("c".to_string(), JobUpdate::Progress(json!({"p": 5}))),
            ]
        );
        // a member named twice: read as a tree, where the last one wins
        assert_eq!(
            replies(r#"{"type":"result","jobId":"a","result":1,"result":2}"#),
            vec![("a".to_string(), result("2"))]
        );
        assert_eq!(
            replies(r#"[{"type":"result","jobId":"a","result":1,"jobId":"b"}]"#),
            vec![("b".to_string(), result("1"))]
        );
        assert!(replies("not json").is_empty());
        assert!(replies(r#"{"type":"result","jobId":7}"#).is_empty());
    }
}
