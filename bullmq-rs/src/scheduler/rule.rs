//! What a job scheduler is: its repeat rule, the template of the jobs it
//! creates, and how it is stored; what both the producer's upsert and the
//! worker's next iteration check and write.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// How a job scheduler repeats (BullMQ's `RepeatOptions`): exactly one of
/// `every` and `pattern` (cron, 5 or 6 fields).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Repeat {
    /// Run this often (whole ms on the wire), in slots aligned to `offset`.
    pub every: Option<Duration>,
    /// A cron pattern; a sixth, leading field gives seconds.
    pub pattern: Option<String>,
    /// IANA time zone of the pattern (default: the process's local zone).
    pub tz: Option<String>,
    /// At most this many iterations.
    pub limit: Option<u64>,
    /// No iteration before this time (ms since the epoch).
    pub start_date: Option<i64>,
    /// No iteration after this time (ms since the epoch).
    pub end_date: Option<i64>,
    /// Cron: run the first iteration now rather than at the next match.
    pub immediately: bool,
    /// `every`: the slots' offset from multiples of `every`, ms.
    pub offset: Option<i64>,
}

impl Repeat {
    /// Every `period` (whole milliseconds).
    pub fn every(period: Duration) -> Self {
        Repeat {
            every: Some(period),
            ..Default::default()
        }
    }

    /// On a cron pattern, in the process's local zone unless [`Repeat::tz`].
    pub fn cron(pattern: impl Into<String>) -> Self {
        Repeat {
            pattern: Some(pattern.into()),
            ..Default::default()
        }
    }

    /// The pattern's time zone (an IANA name such as `Europe/Madrid`).
    pub fn tz(mut self, tz: impl Into<String>) -> Self {
        self.tz = Some(tz.into());
        self
    }

    /// At most `n` iterations.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }
}

/// The job each iteration of a scheduler creates.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct JobTemplate {
    /// Job name (default: the scheduler id).
    pub name: Option<String>,
    /// Job data.
    pub data: Value,
    /// Job options (`jobId`, `delay` and `timestamp` are the scheduler's).
    pub opts: crate::JobOptions,
}

impl JobTemplate {
    /// A template with this name and data and default options.
    pub fn new(name: impl Into<String>, data: Value) -> Self {
        JobTemplate {
            name: Some(name.into()),
            data,
            opts: Default::default(),
        }
    }
}

/// A job scheduler as stored (`repeat:<id>`), for reading.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobScheduler {
    /// Scheduler id.
    pub id: String,
    /// Name of the jobs it creates.
    pub name: String,
    /// When its pending iteration runs (ms), if it has one.
    pub next: Option<i64>,
    /// The repeat rule.
    pub repeat: Repeat,
    /// Iterations created so far (`ic`).
    pub iteration_count: i64,
    /// Template data (JSON).
    pub template_data: Value,
    /// Template options, as stored (JSON).
    pub template_opts: Value,
}

/// A scheduler has exactly one rule: a cron pattern or `every`.
pub(super) fn one_rule(id: &str, pattern: bool, every: bool) -> Result<()> {
    let reason = match (pattern, every) {
        (true, true) => "has both a pattern and `every`",
        (false, false) => "has neither a pattern nor `every`",
        _ => return Ok(()),
    };
    Err(Error::InvalidInput {
        what: "job scheduler",
        reason: format!("scheduler {id:?} {reason}"),
    })
}

/// An iteration's options: the template's (or the previous iteration's)
/// with the scheduler's fields, as BullMQ's `getNextJobOpts` sets them
/// (`prevMillis` only for cron patterns; the script sets `delay`, `jobId`).
pub(super) fn iteration_opts(
    mut opts: Map<String, Value>,
    repeat: Map<String, Value>,
    now: i64,
    at: Option<i64>,
    id: &str,
) -> Value {
    opts.insert("repeat".into(), Value::Object(repeat));
    opts.insert("timestamp".into(), Value::from(now));
    match at {
        Some(t) => drop(opts.insert("prevMillis".into(), Value::from(t))),
        None => drop(opts.remove("prevMillis")),
    }
    opts.insert("repeatJobKey".into(), Value::from(id));
    Value::Object(opts)
}
