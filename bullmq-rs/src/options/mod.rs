//! Job options: what a producer asks for, and the checks that reject bad
//! input before any write. How they are stored in the job hash's `opts`
//! JSON is `opts_codec.rs`; the Duration <-> wire milliseconds conversions
//! are `millis.rs`.
//!
//! This module sits below both `job` and `queue`: it knows neither.

pub(crate) mod millis;
mod opts_codec;

use std::time::Duration;

use crate::error::{Error, Result};

/// BullMQ's highest priority value (`PRIORITY_LIMIT`, 2^21 - 1): npm bullmq
/// 6.7.0 rejects 2^21 ("Priority should be between 0 and 2097151").
pub const MAX_PRIORITY: u32 = 2_097_151;

/// Options for one job, named as in BullMQ's `JobsOptions`. Times are
/// [`Duration`]s; the stored `opts` JSON keeps BullMQ's milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOptions {
    /// A custom id; adding an existing id returns it instead of a new job.
    /// Must not look like an integer nor contain `:`.
    pub job_id: Option<String>,
    /// How long to wait before the job may run (whole ms on the wire).
    pub delay: Option<Duration>,
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
    /// Fail an attempt that runs longer than this (stored as `timeout`, in
    /// ms; BullMQ 6 keeps unknown options and ignores this one).
    pub timeout: Option<Duration>,
    /// For a child in a flow: what its failing for good does to its parent
    /// (none: the parent waits for it forever).
    pub on_failure: Option<ParentOnFailure>,
    /// Deduplication: adds with the same id while a window is open are
    /// answered with the window owner's id instead of adding a job.
    pub deduplication: Option<Deduplication>,
    /// Makes the job a child of an existing job (which then waits for it
    /// once it moves to waiting-children).
    pub parent: Option<ParentRef>,
    /// A Redis pub/sub channel a worker with `publish_results` also
    /// publishes the job's progress and end on, with the job's id (a
    /// gateway's own reply channel). The ends of the jobs one script call
    /// settles come as one message on it: the JSON array of their messages
    /// when there are several. Stored as `replyTo`; BullMQ clients keep
    /// unknown options and ignore this one.
    pub reply_to: Option<String>,
}

/// The parent of a child job: its id and its queue's qualified name
/// (`<prefix>:<queue>`, BullMQ's `queueQualifiedName`). A handler gets the
/// one of its own job from `Job::parent_ref`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRef {
    /// The parent job's id.
    pub id: String,
    /// `<prefix>:<queue>` of the parent's queue.
    pub queue: String,
}

/// BullMQ's `deduplication` option (stored as `de`).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Deduplication {
    /// The window's id: jobs with the same id deduplicate each other.
    pub id: String,
    /// The window closes after this long (else when its job finishes).
    pub ttl: Option<Duration>,
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

/// How long to wait before the next attempt (whole ms on the wire).
#[derive(Debug, Clone, PartialEq)]
pub enum Backoff {
    /// The same delay every time.
    Fixed {
        /// The delay.
        delay: Duration,
        /// 0..=1: the share of the delay that is randomised.
        jitter: Option<f64>,
    },
    /// `delay * 2^(attempt-1)`.
    Exponential {
        /// The delay of the first retry.
        delay: Duration,
        /// 0..=1: the share of the delay that is randomised.
        jitter: Option<f64>,
    },
    /// A strategy the worker implements (`WorkerOptions::backoff_strategy`).
    Custom {
        /// The strategy's name, stored as `type`.
        kind: String,
        /// Passed to the strategy.
        delay: Option<Duration>,
    },
}

impl Backoff {
    /// The same `delay` before every retry.
    pub fn fixed(delay: Duration) -> Self {
        Backoff::Fixed {
            delay,
            jitter: None,
        }
    }

    /// `delay` before the first retry, doubling each time.
    pub fn exponential(delay: Duration) -> Self {
        Backoff::Exponential {
            delay,
            jitter: None,
        }
    }

    /// The worker's custom strategy named `kind`
    /// (`WorkerOptions::backoff_strategy`).
    pub fn custom(kind: impl Into<String>) -> Self {
        Backoff::Custom {
            kind: kind.into(),
            delay: None,
        }
    }

    /// Randomises this share (0..=1) of a fixed or exponential delay; no
    /// effect on a custom strategy.
    pub fn with_jitter(mut self, share: f64) -> Self {
        if let Backoff::Fixed { jitter, .. } | Backoff::Exponential { jitter, .. } = &mut self {
            *jitter = Some(share);
        }
        self
    }
}

/// BullMQ's `removeOnComplete` / `removeOnFail` values.
#[derive(Debug, Clone, PartialEq)]
pub enum KeepJobs {
    /// `true` removes the job at once, `false` keeps it forever.
    Remove(bool),
    /// Keep the newest N jobs of that state (0 removes the job at once; a
    /// negative N keeps every job, as in BullMQ).
    Count(i64),
    /// Keep jobs younger than `age` and/or the newest `count`.
    Policy {
        /// The age limit (whole seconds on the wire).
        age: Option<Duration>,
        /// Jobs.
        count: Option<i64>,
        /// How many old jobs one finish may delete (default 1000).
        limit: Option<i64>,
    },
}

impl KeepJobs {
    /// Keep jobs younger than `age`.
    pub fn younger_than(age: Duration) -> Self {
        KeepJobs::Policy {
            age: Some(age),
            count: None,
            limit: None,
        }
    }
}

/// The normalised policy the finish script applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct KeepPolicy {
    /// None = keep all; Some(0) = remove now.
    pub(crate) count: Option<i64>,
    /// Seconds.
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
            KeepJobs::Policy { age, count, limit } => KeepPolicy {
                count,
                age: age.map(|a| i64::try_from(a.as_secs()).unwrap_or(i64::MAX)),
                limit,
            },
        }
    }
}

impl JobOptions {
    /// Rejects what BullMQ rejects, before anything is written.
    pub fn validate(&self) -> Result<()> {
        if let Some(id) = &self.job_id {
            validate_job_id(id)?;
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
        ] {
            if let Some(v) = v {
                if v < 0 {
                    return Err(Error::invalid(what, format!("{v} is negative")));
                }
            }
        }
        if let Some(
            Backoff::Fixed {
                jitter: Some(j), ..
            }
            | Backoff::Exponential {
                jitter: Some(j), ..
            },
        ) = &self.backoff
        {
            if !(0.0..=1.0).contains(j) {
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
        }
        Ok(())
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
            backoff: Some(Backoff::fixed(Duration::from_millis(10)).with_jitter(1.5)),
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
        assert_eq!(
            KeepJobs::younger_than(Duration::from_secs(3600))
                .policy()
                .age,
            Some(3600)
        );
    }
}
