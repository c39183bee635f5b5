//! The `opts` JSON of a job hash, as BullMQ 6 writes and reads it: the
//! option types to and from that JSON, and the `de` and `parent` members
//! the add script is given apart. Times are whole milliseconds here (ages:
//! whole seconds).

use serde::Serialize;
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
        serde_json::from_str(&self.to_stored_string()).unwrap_or_else(|_| json!({}))
    }

    /// [`Self::to_stored_json`] as text, written straight from the options
    /// (what every add sends: no JSON map built per job).
    pub(crate) fn to_stored_string(&self) -> String {
        // room for the usual options beside the two free-length strings, so
        // that the text is not copied into a larger buffer halfway (a
        // gateway job's opts are ~200 bytes)
        let free = self.job_id.as_ref().map_or(0, String::len)
            + self.reply_to.as_ref().map_or(0, String::len);
        let mut out = StoredText::new(192 + free, self.attempts.unwrap_or(0));
        if let Some(id) = &self.job_id {
            out.key("jobId").value(id);
        }
        if let Some(d) = self.delay {
            out.key("delay").value(&to_ms(d));
        }
        if let Some(p) = self.priority {
            out.key("priority").value(&p);
        }
        if self.lifo {
            out.key("lifo").raw(b"true");
        }
        if let Some(b) = &self.backoff {
            out.key("backoff").backoff(b);
        }
        if let Some(k) = &self.remove_on_complete {
            out.key("removeOnComplete").keep(k);
        }
        if let Some(k) = &self.remove_on_fail {
            out.key("removeOnFail").keep(k);
        }
        if let Some(n) = self.keep_logs {
            out.key("kl").value(&n);
        }
        if let Some(t) = self.timestamp {
            out.key("timestamp").value(&t);
        }
        if let Some(n) = self.stack_trace_limit {
            out.key("stackTraceLimit").value(&n);
        }
        if let Some(t) = self.timeout {
            out.key("timeout").value(&to_ms(t));
        }
        if let Some(p) = self.on_failure {
            out.key(p.key()).raw(b"true");
        }
        if let Some(d) = &self.deduplication {
            out.key("de").value(&d.to_json());
        }
        if let Some(p) = &self.parent {
            out.key("parent").raw(b"{\"id\":").value(&p.id);
            out.key("queue").value(&p.queue).raw(b"}");
        }
        if let Some(channel) = &self.reply_to {
            out.key("replyTo").value(channel);
        }
        out.finish()
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

/// The stored `opts` of a job as text, in BullMQ's key order. Written by
/// hand rather than through a serializer's map: every add writes one, and
/// its keys are constants that need no escaping (the values still go
/// through serde_json, so numbers and strings are written exactly as a
/// `Value` would print them).
struct StoredText {
    text: Vec<u8>,
}

impl StoredText {
    /// Starts the object with `attempts`, the one member always present.
    fn new(capacity: usize, attempts: i64) -> Self {
        let mut out = StoredText {
            text: Vec::with_capacity(capacity),
        };
        out.text.extend_from_slice(b"{\"attempts\":");
        out.value(&attempts);
        out
    }

    /// `,"<key>":` (keys here are plain ASCII names).
    fn key(&mut self, key: &str) -> &mut Self {
        self.text.extend_from_slice(b",\"");
        self.text.extend_from_slice(key.as_bytes());
        self.text.extend_from_slice(b"\":");
        self
    }

    fn raw(&mut self, text: &[u8]) -> &mut Self {
        self.text.extend_from_slice(text);
        self
    }

    /// A number, a string or a `Value`, as serde_json prints it (into a
    /// `Vec`, which cannot fail; nor can these types).
    fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> &mut Self {
        let _ = serde_json::to_writer(&mut self.text, v);
        self
    }

    fn backoff(&mut self, b: &Backoff) {
        let (kind, delay, jitter) = match b {
            Backoff::Fixed { delay, jitter } => ("fixed", Some(*delay), *jitter),
            Backoff::Exponential { delay, jitter } => ("exponential", Some(*delay), *jitter),
            Backoff::Custom { kind, delay } => (kind.as_str(), *delay, None),
        };
        self.raw(b"{\"type\":").value(kind);
        if let Some(d) = delay {
            self.key("delay").value(&to_ms(d));
        }
        if let Some(j) = jitter {
            self.key("jitter").value(&j);
        }
        self.raw(b"}");
    }

    fn keep(&mut self, k: &KeepJobs) {
        match k {
            KeepJobs::Remove(b) => {
                self.value(b);
            }
            KeepJobs::Count(n) => {
                self.value(n);
            }
            KeepJobs::Policy { age, count, limit } => {
                // the first member opens the object, the others follow a comma
                let mut open = true;
                let mut member = |out: &mut Self, name: &str| {
                    out.raw(if open { b"{\"" } else { b",\"" })
                        .raw(name.as_bytes())
                        .raw(b"\":");
                    open = false;
                };
                if let Some(a) = age {
                    member(self, "age");
                    self.value(&a.as_secs());
                }
                if let Some(c) = count {
                    member(self, "count");
                    self.value(c);
                }
                if let Some(l) = limit {
                    member(self, "limit");
                    self.value(l);
                }
                if open {
                    self.raw(b"{");
                }
                self.raw(b"}");
            }
        }
    }

    fn finish(mut self) -> String {
        self.text.push(b'}');
        // only UTF-8 was written
        String::from_utf8(self.text).unwrap_or_else(|_| "{}".to_string())
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

    /// The text written by hand against the same options printed from a
    /// `Value` built member by member (serde_json keeps insertion order), for
    /// the shapes the first two tests leave out.
    #[test]
    fn hand_written_text_prints_as_a_value_would() {
        let cases = [
            (
                JobOptions {
                    backoff: Some(Backoff::Exponential {
                        delay: Duration::from_millis(5),
                        jitter: Some(0.25),
                    }),
                    remove_on_complete: Some(KeepJobs::Policy {
                        age: None,
                        count: Some(-1),
                        limit: None,
                    }),
                    remove_on_fail: Some(KeepJobs::Policy {
                        age: None,
                        count: None,
                        limit: None,
                    }),
                    timeout: Some(Duration::from_millis(1)),
                    on_failure: Some(ParentOnFailure::FailParent),
                    parent: Some(ParentRef {
                        id: "p\u{e9}\n".into(),
                        queue: "bull:q".into(),
                    }),
                    ..Default::default()
                },
                json!({"attempts": 0,
                    "backoff": {"type": "exponential", "delay": 5, "jitter": 0.25},
                    "removeOnComplete": {"count": -1}, "removeOnFail": {}, "timeout": 1,
                    "fpof": true, "parent": {"id": "p\u{e9}\n", "queue": "bull:q"}}),
            ),
            (
                JobOptions {
                    attempts: Some(-3),
                    delay: Some(Duration::ZERO),
                    backoff: Some(Backoff::Custom {
                        kind: "my\"own".into(),
                        delay: None,
                    }),
                    remove_on_complete: Some(KeepJobs::Remove(false)),
                    remove_on_fail: Some(KeepJobs::Count(0)),
                    deduplication: Some(Deduplication {
                        ttl: Some(Duration::from_secs(2)),
                        extend: true,
                        ..Deduplication::new("d")
                    }),
                    ..Default::default()
                },
                json!({"attempts": -3, "delay": 0, "backoff": {"type": "my\"own"},
                    "removeOnComplete": false, "removeOnFail": 0,
                    "de": {"id": "d", "ttl": 2000, "extend": true}}),
            ),
        ];
        for (o, expected) in cases {
            assert_eq!(o.to_stored_string(), expected.to_string());
            assert_eq!(o.to_stored_json(), expected);
        }
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
