//! The `opts` JSON of a job hash, as BullMQ 6 writes and reads it: the
//! option types to and from that JSON, and the `de` and `parent` members
//! the add script is given apart. Times are whole milliseconds here (ages:
//! whole seconds).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};

use super::millis::{as_i64, ms_from_json, secs_from_json, to_ms};
use super::{Backoff, Deduplication, JobOptions, KeepJobs, ParentOnFailure, ParentRef};

impl ParentRef {
    /// The `parent` field of the child's hash, with the child's failure
    /// policy.
    pub(crate) fn hash_json(&self, on_failure: Option<ParentOnFailure>) -> Value {
        let mut p = json!({"id": self.id, "queueKey": self.queue});
        if let Some(policy) = on_failure {
            p[policy.key()] = json!(true);
        }
        p
    }
}

impl Deduplication {
    /// The `de` JSON, with only what is set.
    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        if let Some(t) = self.ttl {
            m.insert("ttl".into(), json!(to_ms(t)));
        }
        for (key, on) in [
            ("extend", self.extend),
            ("replace", self.replace),
            ("keepLastIfActive", self.keep_last_if_active),
            ("reschedule", self.reschedule),
        ] {
            if on {
                m.insert(key.into(), json!(true));
            }
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Option<Self> {
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        Some(Deduplication {
            id: v.get("id")?.as_str()?.to_string(),
            ttl: v.get("ttl").and_then(ms_from_json),
            extend: flag("extend"),
            replace: flag("replace"),
            keep_last_if_active: flag("keepLastIfActive"),
            reschedule: flag("reschedule"),
        })
    }
}

impl KeepJobs {
    fn from_json(v: &Value) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(KeepJobs::Remove(*b)),
            Value::Number(n) => n.as_f64().map(|n| KeepJobs::Count(n as i64)),
            Value::Object(m) => Some(KeepJobs::Policy {
                age: m.get("age").and_then(secs_from_json),
                count: m.get("count").and_then(as_i64),
                limit: m.get("limit").and_then(as_i64),
            }),
            _ => None,
        }
    }
}

impl Backoff {
    fn to_json(&self) -> Value {
        let (kind, delay, jitter) = match self {
            Backoff::Fixed { delay, jitter } => ("fixed", Some(*delay), *jitter),
            Backoff::Exponential { delay, jitter } => ("exponential", Some(*delay), *jitter),
            Backoff::Custom { kind, delay } => (kind.as_str(), *delay, None),
        };
        let mut m = Map::new();
        m.insert("type".into(), json!(kind));
        if let Some(d) = delay {
            m.insert("delay".into(), json!(to_ms(d)));
        }
        if let Some(j) = jitter {
            m.insert("jitter".into(), json!(j));
        }
        Value::Object(m)
    }

    /// Reads a stored `backoff`: a number means fixed, as in BullMQ.
    fn from_json(v: &Value) -> Option<Self> {
        if let Some(delay) = ms_from_json(v) {
            return Some(Backoff::fixed(delay));
        }
        let m = v.as_object()?;
        let delay = m.get("delay").and_then(ms_from_json);
        let jitter = m.get("jitter").and_then(Value::as_f64);
        match m.get("type").and_then(Value::as_str)? {
            "fixed" => Some(Backoff::Fixed {
                delay: delay.unwrap_or_default(),
                jitter,
            }),
            "exponential" => Some(Backoff::Exponential {
                delay: delay.unwrap_or_default(),
                jitter,
            }),
            other => Some(Backoff::Custom {
                kind: other.to_string(),
                delay,
            }),
        }
    }
}

impl JobOptions {
    /// The `opts` JSON as a BullMQ 6 producer stores it: public names except
    /// `keepLogs` -> `kl`, `attempts` always present (0 by default), absent
    /// options left out, times in ms.
    pub fn to_stored_json(&self) -> Value {
        serde_json::to_value(Stored(self)).unwrap_or_else(|_| json!({}))
    }

    /// [`Self::to_stored_json`] as text, written straight from the options
    /// (what every add sends: no JSON map built per job).
    pub(crate) fn to_stored_string(&self) -> String {
        serde_json::to_string(&Stored(self)).unwrap_or_else(|_| "{}".to_string())
    }

    /// Reads stored `opts`, whoever wrote them; unknown keys are ignored and
    /// malformed values read as absent.
    pub fn from_stored_json(v: &Value) -> Self {
        let get = |k: &str| v.get(k);
        JobOptions {
            job_id: get("jobId").and_then(|v| v.as_str().map(str::to_string)),
            delay: get("delay").and_then(ms_from_json),
            priority: get("priority").and_then(as_i64),
            lifo: get("lifo").and_then(Value::as_bool).unwrap_or(false),
            attempts: get("attempts").and_then(as_i64),
            backoff: get("backoff").and_then(Backoff::from_json),
            remove_on_complete: get("removeOnComplete").and_then(KeepJobs::from_json),
            remove_on_fail: get("removeOnFail").and_then(KeepJobs::from_json),
            keep_logs: get("kl").or_else(|| get("keepLogs")).and_then(as_i64),
            timestamp: get("timestamp").and_then(as_i64),
            stack_trace_limit: get("stackTraceLimit").and_then(as_i64),
            timeout: get("timeout").and_then(ms_from_json),
            on_failure: [
                ParentOnFailure::FailParent,
                ParentOnFailure::ContinueParent,
                ParentOnFailure::IgnoreDependency,
                ParentOnFailure::RemoveDependency,
            ]
            .into_iter()
            .find(|p| get(p.key()).and_then(Value::as_bool) == Some(true)),
            deduplication: get("de").and_then(Deduplication::from_json),
            parent: get("parent").and_then(|p| {
                Some(ParentRef {
                    id: p.get("id")?.as_str()?.to_string(),
                    queue: p.get("queue")?.as_str()?.to_string(),
                })
            }),
            reply_to: get("replyTo").and_then(|v| v.as_str().map(str::to_string)),
        }
    }
}

/// The stored `opts` of a job, serialized in BullMQ's key order.
struct Stored<'a>(&'a JobOptions);

impl Serialize for Stored<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let o = self.0;
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("attempts", &o.attempts.unwrap_or(0))?;
        if let Some(id) = &o.job_id {
            m.serialize_entry("jobId", id)?;
        }
        if let Some(d) = o.delay {
            m.serialize_entry("delay", &to_ms(d))?;
        }
        if let Some(p) = o.priority {
            m.serialize_entry("priority", &p)?;
        }
        if o.lifo {
            m.serialize_entry("lifo", &true)?;
        }
        if let Some(b) = &o.backoff {
            m.serialize_entry("backoff", &b.to_json())?;
        }
        if let Some(k) = &o.remove_on_complete {
            m.serialize_entry("removeOnComplete", &StoredKeep(k))?;
        }
        if let Some(k) = &o.remove_on_fail {
            m.serialize_entry("removeOnFail", &StoredKeep(k))?;
        }
        if let Some(n) = o.keep_logs {
            m.serialize_entry("kl", &n)?;
        }
        if let Some(t) = o.timestamp {
            m.serialize_entry("timestamp", &t)?;
        }
        if let Some(n) = o.stack_trace_limit {
            m.serialize_entry("stackTraceLimit", &n)?;
        }
        if let Some(t) = o.timeout {
            m.serialize_entry("timeout", &to_ms(t))?;
        }
        if let Some(p) = o.on_failure {
            m.serialize_entry(p.key(), &true)?;
        }
        if let Some(d) = &o.deduplication {
            m.serialize_entry("de", &d.to_json())?;
        }
        if let Some(p) = &o.parent {
            m.serialize_entry("parent", &json!({"id": p.id, "queue": p.queue}))?;
        }
        if let Some(channel) = &o.reply_to {
            m.serialize_entry("replyTo", channel)?;
        }
        m.end()
    }
}

/// A keep policy as stored (`removeOnComplete`, `removeOnFail`).
struct StoredKeep<'a>(&'a KeepJobs);

impl Serialize for StoredKeep<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            KeepJobs::Remove(b) => serializer.serialize_bool(*b),
            KeepJobs::Count(n) => n.serialize(serializer),
            KeepJobs::Policy { age, count, limit } => {
                let mut m = serializer.serialize_map(None)?;
                if let Some(a) = age {
                    m.serialize_entry("age", &a.as_secs())?;
                }
                if let Some(c) = count {
                    m.serialize_entry("count", c)?;
                }
                if let Some(l) = limit {
                    m.serialize_entry("limit", l)?;
                }
                m.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn stores_like_bullmq() {
        let o = JobOptions {
            attempts: Some(3),
            backoff: Some(Backoff::exponential(Duration::from_secs(1))),
            remove_on_complete: Some(KeepJobs::Count(10)),
            remove_on_fail: Some(KeepJobs::younger_than(Duration::from_secs(86_400))),
            delay: Some(Duration::from_millis(1500)),
            timeout: Some(Duration::from_secs(30)),
            keep_logs: Some(5),
            ..Default::default()
        };
        assert_eq!(
            o.to_stored_json().to_string(),
            r#"{"attempts":3,"delay":1500,"backoff":{"type":"exponential","delay":1000},"removeOnComplete":10,"removeOnFail":{"age":86400},"kl":5,"timeout":30000}"#
        );
        assert_eq!(
            JobOptions::default().to_stored_json(),
            json!({"attempts":0})
        );
        assert_eq!(JobOptions::from_stored_json(&o.to_stored_json()), o);
        assert_eq!(o.to_stored_string(), o.to_stored_json().to_string());
    }

    /// What an add sends is the stored JSON, every option set, in BullMQ's
    /// key order (written without a map, so the order is the code's).
    #[test]
    fn the_sent_text_is_the_stored_json() {
        let o = JobOptions {
            job_id: Some("a\"b".into()),
            priority: Some(7),
            lifo: true,
            attempts: Some(2),
            backoff: Some(Backoff::fixed(Duration::from_millis(250))),
            remove_on_complete: Some(KeepJobs::Remove(true)),
            remove_on_fail: Some(KeepJobs::Policy {
                age: Some(Duration::from_secs(3600)),
                count: Some(5),
                limit: Some(100),
            }),
            timestamp: Some(1_700_000_000_000),
            stack_trace_limit: Some(3),
            on_failure: Some(ParentOnFailure::IgnoreDependency),
            deduplication: Some(Deduplication::new("d")),
            reply_to: Some("replies".into()),
            ..Default::default()
        };
        let text = o.to_stored_string();
        assert_eq!(text, o.to_stored_json().to_string());
        assert_eq!(
            text,
            r#"{"attempts":2,"jobId":"a\"b","priority":7,"lifo":true,"backoff":{"type":"fixed","delay":250},"removeOnComplete":true,"removeOnFail":{"age":3600,"count":5,"limit":100},"timestamp":1700000000000,"stackTraceLimit":3,"idof":true,"de":{"id":"d"},"replyTo":"replies"}"#
        );
        assert_eq!(JobOptions::from_stored_json(&o.to_stored_json()), o);
    }

    #[test]
    fn reads_numeric_backoff_as_fixed() {
        let o = JobOptions::from_stored_json(&json!({"backoff": 250, "attempts": 2}));
        assert_eq!(o.backoff, Some(Backoff::fixed(Duration::from_millis(250))));
    }

    #[test]
    fn reads_negative_times_as_zero() {
        let o = JobOptions::from_stored_json(&json!({"delay": -5, "timeout": 1.9}));
        assert_eq!(o.delay, Some(Duration::ZERO));
        assert_eq!(o.timeout, Some(Duration::from_millis(1)));
    }
}
