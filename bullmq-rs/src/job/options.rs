//! Job options: what a producer asks for, how BullMQ stores them in the job
//! hash's `opts` JSON, and the checks that reject bad input before any write.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// BullMQ's highest priority value (`PRIORITY_LIMIT`, 2^21 - 1): npm bullmq
/// 6.7.0 rejects 2^21 ("Priority should be between 0 and 2097151").
pub const MAX_PRIORITY: u32 = 2_097_151;

/// Options for one job, named as in BullMQ's `JobsOptions`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOptions {
    /// A custom id; adding an existing id returns it instead of a new job.
    /// Must not look like an integer nor contain `:`.
    pub job_id: Option<String>,
    /// Milliseconds to wait before the job may run.
    pub delay: Option<i64>,
    /// 1 (highest) ..= 2^21 - 1; 0 or none = no priority (runs before prioritized jobs).
    pub priority: Option<i64>,
    /// Last in, first out.
    pub lifo: bool,
    /// Total attempts, the first included (0 and 1 both mean one attempt).
    pub attempts: Option<i64>,
    /// Delay between attempts.
    pub backoff: Option<Backoff>,
    /// What to keep of the job once completed.
    pub remove_on_complete: Option<KeepJobs>,
    /// What to keep of the job once failed for good.
    pub remove_on_fail: Option<KeepJobs>,
    /// Keep only the newest N log lines.
    pub keep_logs: Option<i64>,
    /// Creation time (ms since the epoch) instead of now.
    pub timestamp: Option<i64>,
    /// Keep only the newest N stack traces.
    pub stack_trace_limit: Option<i64>,
    /// Fail an attempt that runs longer than this many ms (stored as
    /// `timeout`; BullMQ 6 keeps unknown options and ignores this one).
    pub timeout: Option<i64>,
    /// For a child in a flow: what its failing for good does to its parent
    /// (none: the parent waits for it forever).
    pub on_failure: Option<ParentOnFailure>,
    /// Deduplication: adds with the same id while a window is open are
    /// answered with the window owner's id instead of adding a job.
    pub deduplication: Option<Deduplication>,
    /// Makes the job a child of an existing job (which then waits for it
    /// once it moves to waiting-children).
    pub parent: Option<ParentRef>,
}

/// The parent of a child job: its id and its queue's qualified name
/// (`<prefix>:<queue>`, BullMQ's `queueQualifiedName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRef {
    /// The parent job's id.
    pub id: String,
    /// `<prefix>:<queue>` of the parent's queue.
    pub queue: String,
}

impl ParentRef {
    /// The parent `job` (typically the job a handler is running).
    pub fn of(job: &super::Job) -> Self {
        ParentRef {
            id: job.id.clone(),
            queue: job.queue.keys().qualified_name(),
        }
    }

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

/// BullMQ's `deduplication` option (stored as `de`).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Deduplication {
    /// The window's id: jobs with the same id deduplicate each other.
    pub id: String,
    /// The window closes after this many ms (else when its job finishes).
    pub ttl: Option<i64>,
    /// Each duplicate restarts the ttl.
    pub extend: bool,
    /// A duplicate replaces a delayed owner.
    pub replace: bool,
    /// A duplicate arriving while the owner runs is kept (the latest one)
    /// and added when the owner finishes.
    pub keep_last_if_active: bool,
    /// A duplicate gives a delayed owner its own delay.
    pub reschedule: bool,
}

impl Deduplication {
    /// A window with this id, closing when its job finishes.
    pub fn new(id: impl Into<String>) -> Self {
        Deduplication {
            id: id.into(),
            ..Default::default()
        }
    }

    /// The `de` JSON, with only what is set.
    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        if let Some(t) = self.ttl {
            m.insert("ttl".into(), json!(t));
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
            ttl: v.get("ttl").and_then(as_i64),
            extend: flag("extend"),
            replace: flag("replace"),
            keep_last_if_active: flag("keepLastIfActive"),
            reschedule: flag("reschedule"),
        })
    }
}

/// What a flow child failing for good does to its parent (BullMQ's
/// `failParentOnFailure`, `continueParentOnFailure`,
/// `ignoreDependencyOnFailure`, `removeDependencyOnFailure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentOnFailure {
    /// The parent fails too (`fpof`).
    FailParent,
    /// The parent runs at once, the failure recorded (`cpof`).
    ContinueParent,
    /// The failure is recorded and the parent runs once its other
    /// children are done (`idof`).
    IgnoreDependency,
    /// The child is dropped from the parent's dependencies (`rdof`).
    RemoveDependency,
}

impl ParentOnFailure {
    /// The short key BullMQ stores the flag under.
    pub(crate) fn key(self) -> &'static str {
        match self {
            ParentOnFailure::FailParent => "fpof",
            ParentOnFailure::ContinueParent => "cpof",
            ParentOnFailure::IgnoreDependency => "idof",
            ParentOnFailure::RemoveDependency => "rdof",
        }
    }
}

/// How long to wait before the next attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Backoff {
    /// The same delay every time.
    Fixed {
        /// Milliseconds.
        delay: i64,
        /// 0..=1: the share of the delay that is randomised.
        jitter: Option<f64>,
    },
    /// `delay * 2^(attempt-1)`.
    Exponential {
        /// Milliseconds for the first retry.
        delay: i64,
        /// 0..=1: the share of the delay that is randomised.
        jitter: Option<f64>,
    },
    /// A strategy the worker implements (`WorkerOptions::backoff_strategy`).
    Custom {
        /// The strategy's name, stored as `type`.
        kind: String,
        /// Passed to the strategy.
        delay: Option<i64>,
    },
}

/// BullMQ's `removeOnComplete` / `removeOnFail` values.
#[derive(Debug, Clone, PartialEq)]
pub enum KeepJobs {
    /// `true` removes the job at once, `false` keeps it forever.
    Remove(bool),
    /// Keep the newest N jobs of that state (0 removes the job at once; a
    /// negative N keeps every job, as in BullMQ).
    Count(i64),
    /// Keep jobs younger than `age` seconds and/or the newest `count`.
    Policy {
        /// Seconds.
        age: Option<i64>,
        /// Jobs.
        count: Option<i64>,
        /// How many old jobs one finish may delete (default 1000).
        limit: Option<i64>,
    },
}

/// The normalised policy the finish script applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct KeepPolicy {
    /// None = keep all; Some(0) = remove now.
    pub(crate) count: Option<i64>,
    pub(crate) age: Option<i64>,
    pub(crate) limit: Option<i64>,
}

impl KeepJobs {
    pub(crate) fn policy(&self) -> KeepPolicy {
        match *self {
            KeepJobs::Remove(true) => KeepPolicy {
                count: Some(0),
                ..Default::default()
            },
            KeepJobs::Remove(false) => KeepPolicy::default(),
            // BullMQ turns a number into `{count: n}`: a negative count is
            // not 0 (keep the job) and not positive (trim nothing)
            KeepJobs::Count(n) if n < 0 => KeepPolicy::default(),
            KeepJobs::Count(n) => KeepPolicy {
                count: Some(n),
                ..Default::default()
            },
            KeepJobs::Policy { age, count, limit } => KeepPolicy { count, age, limit },
        }
    }

    fn to_json(&self) -> Value {
        match self {
            KeepJobs::Remove(b) => json!(b),
            KeepJobs::Count(n) => json!(n),
            KeepJobs::Policy { age, count, limit } => {
                let mut m = Map::new();
                if let Some(a) = age {
                    m.insert("age".into(), json!(a));
                }
                if let Some(c) = count {
                    m.insert("count".into(), json!(c));
                }
                if let Some(l) = limit {
                    m.insert("limit".into(), json!(l));
                }
                Value::Object(m)
            }
        }
    }

    fn from_json(v: &Value) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(KeepJobs::Remove(*b)),
            Value::Number(n) => n.as_f64().map(|n| KeepJobs::Count(n as i64)),
            Value::Object(m) => Some(KeepJobs::Policy {
                age: m.get("age").and_then(as_i64),
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
            m.insert("delay".into(), json!(d));
        }
        if let Some(j) = jitter {
            m.insert("jitter".into(), json!(j));
        }
        Value::Object(m)
    }

    /// Reads a stored `backoff`: a number means fixed, as in BullMQ.
    fn from_json(v: &Value) -> Option<Self> {
        if let Some(delay) = as_i64(v) {
            return Some(Backoff::Fixed {
                delay,
                jitter: None,
            });
        }
        let m = v.as_object()?;
        let delay = m.get("delay").and_then(as_i64);
        let jitter = m.get("jitter").and_then(Value::as_f64);
        match m.get("type").and_then(Value::as_str)? {
            "fixed" => Some(Backoff::Fixed {
                delay: delay.unwrap_or(0),
                jitter,
            }),
            "exponential" => Some(Backoff::Exponential {
                delay: delay.unwrap_or(0),
                jitter,
            }),
            other => Some(Backoff::Custom {
                kind: other.to_string(),
                delay,
            }),
        }
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

impl JobOptions {
    /// Rejects what BullMQ rejects, before anything is written.
    pub fn validate(&self) -> Result<()> {
        if let Some(id) = &self.job_id {
            validate_job_id(id)?;
        }
        if let Some(d) = self.delay {
            if d < 0 {
                return Err(Error::invalid(
                    "delay",
                    format!("{d} is negative; use 0 or more milliseconds"),
                ));
            }
        }
        if let Some(p) = self.priority {
            if !(0..=i64::from(MAX_PRIORITY)).contains(&p) {
                return Err(Error::invalid(
                    "priority",
                    format!("{p} is outside 0..={MAX_PRIORITY}"),
                ));
            }
        }
        for (what, v) in [
            ("attempts", self.attempts),
            ("keepLogs", self.keep_logs),
            ("timestamp", self.timestamp),
            ("stackTraceLimit", self.stack_trace_limit),
            ("timeout", self.timeout),
        ] {
            if let Some(v) = v {
                if v < 0 {
                    return Err(Error::invalid(what, format!("{v} is negative")));
                }
            }
        }
        if let Some(b) = &self.backoff {
            let (delay, jitter) = match b {
                Backoff::Fixed { delay, jitter } | Backoff::Exponential { delay, jitter } => {
                    (Some(*delay), *jitter)
                }
                Backoff::Custom { delay, .. } => (*delay, None),
            };
            if delay.is_some_and(|d| d < 0) {
                return Err(Error::invalid("backoff", "the delay is negative"));
            }
            if jitter.is_some_and(|j| !(0.0..=1.0).contains(&j)) {
                return Err(Error::invalid("backoff", "jitter must be between 0 and 1"));
            }
        }
        if let Some(p) = &self.parent {
            if p.id.is_empty() || p.queue.is_empty() {
                return Err(Error::invalid(
                    "parent",
                    "a parent needs its job id and its queue's qualified name",
                ));
            }
        }
        if let Some(d) = &self.deduplication {
            if d.id.is_empty() {
                return Err(Error::invalid(
                    "deduplication",
                    "the deduplication id is empty",
                ));
            }
            if d.ttl.is_some_and(|t| t < 0) {
                return Err(Error::invalid("deduplication", "the ttl is negative"));
            }
        }
        Ok(())
    }

    /// The `opts` JSON as a BullMQ 6 producer stores it: public names except
    /// `keepLogs` -> `kl`, `attempts` always present (0 by default), absent
    /// options left out.
    pub fn to_stored_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("attempts".into(), json!(self.attempts.unwrap_or(0)));
        if let Some(id) = &self.job_id {
            m.insert("jobId".into(), json!(id));
        }
        if let Some(d) = self.delay {
            m.insert("delay".into(), json!(d));
        }
        if let Some(p) = self.priority {
            m.insert("priority".into(), json!(p));
        }
        if self.lifo {
            m.insert("lifo".into(), json!(true));
        }
        if let Some(b) = &self.backoff {
            m.insert("backoff".into(), b.to_json());
        }
        if let Some(k) = &self.remove_on_complete {
            m.insert("removeOnComplete".into(), k.to_json());
        }
        if let Some(k) = &self.remove_on_fail {
            m.insert("removeOnFail".into(), k.to_json());
        }
        if let Some(n) = self.keep_logs {
            m.insert("kl".into(), json!(n));
        }
        if let Some(t) = self.timestamp {
            m.insert("timestamp".into(), json!(t));
        }
        if let Some(n) = self.stack_trace_limit {
            m.insert("stackTraceLimit".into(), json!(n));
        }
        if let Some(t) = self.timeout {
            m.insert("timeout".into(), json!(t));
        }
        if let Some(p) = self.on_failure {
            m.insert(p.key().into(), json!(true));
        }
        if let Some(d) = &self.deduplication {
            m.insert("de".into(), d.to_json());
        }
        if let Some(p) = &self.parent {
            m.insert("parent".into(), json!({"id": p.id, "queue": p.queue}));
        }
        Value::Object(m)
    }

    /// Reads stored `opts`, whoever wrote them; unknown keys are ignored and
    /// malformed values read as absent.
    pub fn from_stored_json(v: &Value) -> Self {
        let get = |k: &str| v.get(k);
        JobOptions {
            job_id: get("jobId").and_then(|v| v.as_str().map(str::to_string)),
            delay: get("delay").and_then(as_i64),
            priority: get("priority").and_then(as_i64),
            lifo: get("lifo").and_then(Value::as_bool).unwrap_or(false),
            attempts: get("attempts").and_then(as_i64),
            backoff: get("backoff").and_then(Backoff::from_json),
            remove_on_complete: get("removeOnComplete").and_then(KeepJobs::from_json),
            remove_on_fail: get("removeOnFail").and_then(KeepJobs::from_json),
            keep_logs: get("kl").or_else(|| get("keepLogs")).and_then(as_i64),
            timestamp: get("timestamp").and_then(as_i64),
            stack_trace_limit: get("stackTraceLimit").and_then(as_i64),
            timeout: get("timeout").and_then(as_i64),
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
        }
    }
}

/// BullMQ's rules for custom ids: not integer-like (they would collide with
/// generated ids) and no `:` (it splits keys), except scheduler iteration ids
/// `repeat:<scheduler>:<millis>`.
pub fn validate_job_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid(
            "job id",
            "a custom job id must not be empty",
        ));
    }
    if looks_like_integer(id) {
        return Err(Error::invalid(
            "job id",
            format!("{id:?} looks like an integer; generated ids use those"),
        ));
    }
    if id.contains(':') && id.split(':').count() != 3 {
        return Err(Error::invalid("job id", format!("{id:?} contains ':'")));
    }
    Ok(())
}

/// What JavaScript's `String(parseInt(id, 10)) === id` accepts.
fn looks_like_integer(id: &str) -> bool {
    let digits = id.strip_prefix('-').unwrap_or(id);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && id != "-0"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_like_bullmq() {
        let o = JobOptions {
            attempts: Some(3),
            backoff: Some(Backoff::Exponential {
                delay: 1000,
                jitter: None,
            }),
            remove_on_complete: Some(KeepJobs::Count(10)),
            keep_logs: Some(5),
            ..Default::default()
        };
        assert_eq!(
            o.to_stored_json(),
            json!({"attempts":3,"backoff":{"type":"exponential","delay":1000},"removeOnComplete":10,"kl":5})
        );
        assert_eq!(
            JobOptions::default().to_stored_json(),
            json!({"attempts":0})
        );
        assert_eq!(JobOptions::from_stored_json(&o.to_stored_json()), o);
    }

    #[test]
    fn reads_numeric_backoff_as_fixed() {
        let o = JobOptions::from_stored_json(&json!({"backoff": 250, "attempts": 2}));
        assert_eq!(
            o.backoff,
            Some(Backoff::Fixed {
                delay: 250,
                jitter: None
            })
        );
    }

    #[test]
    fn rejects_bad_input() {
        for id in ["12", "0", "-3", "a:b", ""] {
            assert!(validate_job_id(id).is_err(), "{id}");
        }
        for id in ["012", "abc", "repeat:s:1700000000000", "1.5", "uuid-1"] {
            assert!(validate_job_id(id).is_ok(), "{id}");
        }
        let bad = |o: JobOptions| assert!(o.validate().is_err(), "{o:?}");
        bad(JobOptions {
            priority: Some(2_097_152),
            ..Default::default()
        });
        bad(JobOptions {
            priority: Some(-1),
            ..Default::default()
        });
        bad(JobOptions {
            delay: Some(-1),
            ..Default::default()
        });
        bad(JobOptions {
            backoff: Some(Backoff::Fixed {
                delay: 10,
                jitter: Some(1.5),
            }),
            ..Default::default()
        });
        assert!(JobOptions {
            priority: Some(2_097_151),
            ..Default::default()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn keep_jobs_policies() {
        assert_eq!(KeepJobs::Remove(true).policy().count, Some(0));
        assert_eq!(KeepJobs::Remove(false).policy().count, None);
        assert_eq!(KeepJobs::Count(5).policy().count, Some(5));
        assert_eq!(KeepJobs::Count(0).policy().count, Some(0));
        assert_eq!(KeepJobs::Count(-1).policy(), KeepPolicy::default());
    }
}
