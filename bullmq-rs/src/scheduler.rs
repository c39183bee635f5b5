//! Job schedulers (BullMQ's repeatable jobs): the rule and template types,
//! planning an upsert (`Queue::upsert_job_scheduler`), and the worker side:
//! when a worker takes a job a scheduler produced (`rjk` set), it adds the
//! scheduler's next iteration before running the handler, as a BullMQ 6
//! worker does. Without this a scheduler would stop after the first
//! iteration a Rust worker took.
//!
//! The next time of a cron `pattern` is computed here (5 or 6 fields,
//! seconds optional, in the scheduler's `tz` or else the process's local
//! zone, as Node's `cron-parser` does); for `every` the script computes it
//! from the scheduler's current slot and offset. The script adds nothing
//! unless the taken job is still the scheduler's current iteration, so
//! workers of any language racing on one scheduler add it once.

use chrono::{DateTime, Local, Offset, TimeZone};
use croner::parser::{CronParser, Seconds};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::job::Job;
use crate::script;
use crate::time::now_ms;

/// How a job scheduler repeats (BullMQ's `RepeatOptions`): exactly one of
/// `every` (ms) and `pattern` (cron, 5 or 6 fields).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Repeat {
    /// Run every this many ms, in slots aligned to `offset`.
    pub every: Option<u64>,
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
    /// Every `ms` milliseconds.
    pub fn every(ms: u64) -> Self {
        Repeat {
            every: Some(ms),
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

/// The first iteration of a scheduler being upserted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FirstIteration {
    /// Cron: when it runs; `every`: `None` (the script computes it).
    pub(crate) at: Option<i64>,
    /// The scheduler's stored fields (JSON for the script).
    pub(crate) scheduler: Value,
    /// The iteration job's options.
    pub(crate) opts: Value,
}

/// Plans an upsert as BullMQ's `Queue.upsertJobScheduler` does; `None`
/// when the scheduler would never run (a zero `limit`, or a cron pattern
/// with no match before `end_date`).
pub(crate) fn plan_upsert(
    id: &str,
    repeat: &Repeat,
    name: &str,
    template_opts: &Value,
    now: i64,
) -> Result<Option<FirstIteration>> {
    let invalid = |reason: String| Error::InvalidInput {
        what: "job scheduler",
        reason,
    };
    if repeat.end_date.is_some_and(|end| end < now) {
        return Err(invalid(
            "end date must be greater than current timestamp".into(),
        ));
    }
    let pattern = repeat.pattern.as_deref().filter(|p| !p.is_empty());
    let every = repeat.every.filter(|e| *e > 0);
    one_rule(id, pattern.is_some(), every.is_some())?;
    if repeat.immediately && repeat.start_date.is_some() {
        return Err(invalid(format!(
            "scheduler {id:?}: both `immediately` and a start date are given"
        )));
    }
    if repeat.limit == Some(0) {
        return Ok(None);
    }
    let at = match pattern {
        Some(pattern) => {
            match next_cron_run(
                pattern,
                repeat.tz.as_deref(),
                repeat.immediately,
                repeat.start_date,
                repeat.end_date,
                now,
                now,
            )? {
                None => return Ok(None),
                at => at,
            }
        }
        None => None,
    };
    let offset = repeat.offset.filter(|o| every.is_some() && *o != 0);
    let mut rule = Map::new();
    let put = |m: &mut Map<String, Value>, k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put(&mut rule, "pattern", pattern.map(Value::from));
    put(&mut rule, "every", every.map(Value::from));
    put(&mut rule, "tz", repeat.tz.clone().map(Value::from));
    put(&mut rule, "limit", repeat.limit.map(Value::from));
    put(&mut rule, "startDate", repeat.start_date.map(Value::from));
    put(&mut rule, "endDate", repeat.end_date.map(Value::from));
    let mut scheduler = rule.clone();
    scheduler.insert("name".into(), Value::from(name));
    put(&mut scheduler, "offset", offset.map(Value::from));

    let opts = template_opts.as_object().cloned().unwrap_or_default();
    let mut job_repeat = rule;
    put(&mut job_repeat, "offset", offset.map(Value::from));
    job_repeat.insert("count".into(), Value::from(1));
    let opts = iteration_opts(opts, job_repeat, now, at, id);
    Ok(Some(FirstIteration {
        at,
        scheduler: Value::Object(scheduler),
        opts,
    }))
}

/// An iteration's options: the template's (or the previous iteration's)
/// with the scheduler's fields, as BullMQ's `getNextJobOpts` sets them
/// (`prevMillis` only for cron patterns; the script sets `delay`, `jobId`).
fn iteration_opts(
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

/// What the script needs to add the next iteration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NextIteration {
    /// The next time for a cron pattern; `None` for `every` (the script
    /// computes it).
    pub(crate) at: Option<i64>,
    /// The next job's options (the script sets `delay` and `jobId`).
    pub(crate) opts: Value,
}

/// Adds the next iteration of the scheduler that produced `job`, if any.
/// Returns the next job's id when one was added.
pub(crate) async fn add_next_iteration(job: &Job) -> Result<Option<String>> {
    let Some(scheduler_id) = job.repeat_job_key.as_deref() else {
        return Ok(None);
    };
    let queue = &job.queue;
    let k = queue.keys();
    if has_legacy_key_shape(scheduler_id) {
        // a v5 repeatable key, unless a scheduler happens to be named so
        let is_scheduler: bool = redis::cmd("HEXISTS")
            .arg(k.key(&format!("repeat:{scheduler_id}")))
            .arg("ic")
            .query_async(&mut queue.con())
            .await?;
        if !is_scheduler {
            return Err(Error::InvalidInput {
                what: "repeatable job",
                reason: format!(
                    "legacy repeatable job metadata is not supported in BullMQ v6 (key {scheduler_id:?}); \
                     migrate legacy repeatable jobs to job schedulers"
                ),
            });
        }
    }
    let Some(next) = plan(scheduler_id, &job.raw_opts, now_ms())? else {
        return Ok(None);
    };
    let id: Option<String> = script::SCHEDULE_NEXT
        .call()
        .keys(k.core())
        .key(k.key("repeat"))
        .key(k.id())
        .arg(k.base())
        .arg(now_ms())
        .arg(scheduler_id)
        .arg(&job.id)
        .arg(next.at.map(|t| t.to_string()).unwrap_or_default())
        .arg(next.opts.to_string())
        .invoke(&mut queue.con())
        .await?;
    Ok(id)
}

/// Decides whether a scheduler has a next iteration after the job whose
/// options are `opts`, taken at `now`, and with which options. `None` when
/// the scheduler's `limit` or `endDate` is reached.
pub(crate) fn plan(scheduler_id: &str, opts: &Value, now: i64) -> Result<Option<NextIteration>> {
    let empty = Map::new();
    let repeat = opts
        .get("repeat")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let pattern = repeat
        .get("pattern")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let every = repeat
        .get("every")
        .and_then(Value::as_f64)
        .filter(|e| *e > 0.0);
    one_rule(scheduler_id, pattern.is_some(), every.is_some())?;
    let iteration = repeat
        .get("count")
        .and_then(Value::as_i64)
        .filter(|c| *c > 0)
        .map_or(1, |c| c + 1);
    if repeat
        .get("limit")
        .and_then(Value::as_i64)
        .is_some_and(|limit| iteration > limit)
    {
        return Ok(None);
    }
    let end = repeat.get("endDate").and_then(millis);
    if end.is_some_and(|end| now > end) {
        return Ok(None);
    }
    let start = repeat.get("startDate").and_then(millis);
    let prev = opts.get("prevMillis").and_then(Value::as_i64).unwrap_or(0);
    let from = now.max(prev);
    let at = match pattern {
        Some(pattern) => {
            let tz = repeat
                .get("tz")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty());
            let immediately = repeat
                .get("immediately")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            match next_cron_run(pattern, tz, immediately, start, end, now, from)? {
                None => return Ok(None),
                at => at,
            }
        }
        None => None,
    };

    let mut next_opts = opts.as_object().cloned().unwrap_or_default();
    next_opts.entry("attempts").or_insert(Value::from(0));
    let mut next_repeat = repeat.clone();
    next_repeat.remove("immediately");
    let offset = repeat
        .get("offset")
        .filter(|o| o.as_f64().is_some_and(|o| o != 0.0));
    match (every, offset) {
        (Some(_), Some(o)) => drop(next_repeat.insert("offset".into(), o.clone())),
        _ => drop(next_repeat.remove("offset")),
    }
    next_repeat.insert("count".into(), Value::from(iteration));
    for (field, value) in [("startDate", start), ("endDate", end)] {
        match value {
            Some(ms) => drop(next_repeat.insert(field.into(), Value::from(ms))),
            None => drop(next_repeat.remove(field)),
        }
    }
    Ok(Some(NextIteration {
        at,
        opts: iteration_opts(next_opts, next_repeat, now, at, scheduler_id),
    }))
}

/// A scheduler has exactly one rule: a cron pattern or `every`.
fn one_rule(id: &str, pattern: bool, every: bool) -> Result<()> {
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

/// When a cron rule runs next, as BullMQ's repeat strategy decides: at the
/// first match after `from` (and not before `start`), or `now` when
/// `immediately`, never before `from`; `None` when no run is left before
/// `end`.
fn next_cron_run(
    pattern: &str,
    tz: Option<&str>,
    immediately: bool,
    start: Option<i64>,
    end: Option<i64>,
    now: i64,
    from: i64,
) -> Result<Option<i64>> {
    let next = if immediately {
        Some(now)
    } else {
        next_cron_millis(pattern, tz, from.max(start.unwrap_or(0)))?
    };
    Ok(next
        .filter(|t| end.is_none_or(|end| *t <= end))
        .map(|t| t.max(from)))
}

/// The first time strictly after `after_ms` (ms since the epoch) that the
/// cron `pattern` matches (5 fields, or 6 with seconds first), in zone `tz`
/// (an IANA name) or else the local zone, as BullMQ's cron-parser computes
/// a scheduler's next run. `None` when the pattern never matches again.
pub fn next_cron_millis(pattern: &str, tz: Option<&str>, after_ms: i64) -> Result<Option<i64>> {
    let invalid = |reason: String| Error::InvalidInput {
        what: "cron pattern",
        reason,
    };
    let cron = CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(pattern)
        .map_err(|e| invalid(format!("{pattern:?}: {e}")))?;
    fn next_in<Z: TimeZone>(cron: &croner::Cron, zone: Z, after_ms: i64) -> Option<i64> {
        let after: DateTime<Z> = zone.timestamp_millis_opt(after_ms).single()?;
        let next = cron.find_next_occurrence(&after, false).ok()?;
        if cron.is_time_matching(&next).unwrap_or(true) {
            return Some(next.timestamp_millis());
        }
        // The pattern names a wall time the clocks skip (a DST gap), and
        // croner gave the gap's end. cron-parser keeps the wall time and
        // reads it with the offset from before the gap (02:30 in a 02:00 to
        // 03:00 gap runs at 03:30), so the schedule stays BullMQ's.
        let wanted = cron
            .find_next_occurrence(&after.naive_local(), false)
            .ok()?;
        let before = zone
            .timestamp_millis_opt(next.timestamp_millis() - 1)
            .single()?;
        let offset = i64::from(before.offset().fix().local_minus_utc());
        Some(wanted.and_utc().timestamp_millis() - offset * 1000)
    }
    Ok(match tz {
        Some(name) => {
            let zone: chrono_tz::Tz = name
                .parse()
                .map_err(|_| invalid(format!("unknown time zone {name:?}")))?;
            next_in(&cron, zone, after_ms)
        }
        None => next_in(&cron, Local, after_ms),
    })
}

/// A date option as BullMQ stores it (ms since the epoch), or an RFC 3339
/// date as a caller may have written it.
fn millis(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.parse::<i64>().ok().or_else(|| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|d| d.timestamp_millis())
        }),
        _ => None,
    }
}

/// BullMQ 5's repeatable-job keys look like `name:id:endDate:tz:pattern`
/// (a cron pattern with spaces, or a number of ms); BullMQ 6 rejects them.
fn has_legacy_key_shape(key: &str) -> bool {
    let parts: Vec<&str> = key.splitn(5, ':').collect();
    let [_, _, end_date, _, last] = parts[..] else {
        return false;
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !end_date.is_empty() && !numeric(end_date) {
        return false;
    }
    !last.is_empty() && (last.contains(' ') || numeric(last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cron_with_seconds_and_zone() {
        // 2026-11-27T10:00:06.073Z; every 2 s -> 10:00:08.000
        let t = 1_795_773_606_073;
        assert_eq!(
            next_cron_millis("*/2 * * * * *", Some("Europe/Madrid"), t).unwrap(),
            Some(1_795_773_608_000)
        );
        // an exact match is not "after"
        assert_eq!(
            next_cron_millis("*/2 * * * * *", None, 1_795_773_608_000).unwrap(),
            Some(1_795_773_610_000)
        );
        // five fields: minutes; the zone decides the hour
        let at = next_cron_millis("0 12 * * *", Some("Europe/Madrid"), t)
            .unwrap()
            .unwrap();
        assert_eq!(at, 1_795_777_200_000); // 12:00 in Madrid (UTC+1) = 11:00Z
                                           // 02:30 does not exist in New York on 2027-03-14 (clocks skip 02:00 to
                                           // 03:00): like cron-parser, run at 03:30 EDT = 07:30Z
        assert_eq!(
            next_cron_millis("30 2 * * *", Some("America/New_York"), 1_805_004_000_000).unwrap(),
            Some(1_805_009_400_000)
        );
        assert!(next_cron_millis("not a pattern", None, t).is_err());
        assert!(next_cron_millis("* * * * *", Some("Mars/Olympus"), t).is_err());
    }

    #[test]
    fn plans_the_next_cron_iteration_like_a_node_worker() {
        let opts = json!({"prevMillis": 1_795_773_606_000i64, "repeatJobKey": "c", "jobId": "repeat:c:1795773606000",
            "timestamp": 1, "delay": 319, "repeat": {"tz": "Europe/Madrid", "pattern": "*/2 * * * * *", "count": 1, "limit": 5}});
        let next = plan("c", &opts, 1_795_773_606_073).unwrap().unwrap();
        assert_eq!(next.at, Some(1_795_773_608_000));
        let o = next.opts;
        assert_eq!(o["prevMillis"], 1_795_773_608_000i64);
        assert_eq!(
            o["repeat"],
            json!({"tz": "Europe/Madrid", "pattern": "*/2 * * * * *", "count": 2, "limit": 5})
        );
        assert_eq!(o["attempts"], 0);
        assert_eq!(o["timestamp"], 1_795_773_606_073i64);
        assert_eq!(o["repeatJobKey"], "c");
    }

    #[test]
    fn every_leaves_the_time_to_the_script_and_keeps_template_options() {
        let opts = json!({"removeOnComplete": true, "attempts": 3, "timestamp": 5, "repeatJobKey": "e",
            "repeat": {"every": 2000, "count": 1, "offset": 0, "immediately": true}, "delay": 0});
        let next = plan("e", &opts, 10).unwrap().unwrap();
        assert_eq!(next.at, None);
        assert_eq!(next.opts["repeat"], json!({"every": 2000, "count": 2}));
        assert_eq!(next.opts["attempts"], 3);
        assert_eq!(next.opts["removeOnComplete"], true);
        assert!(next.opts.get("prevMillis").is_none());
    }

    #[test]
    fn stops_at_the_limit_and_the_end_date() {
        let at_limit = json!({"repeat": {"every": 1000, "count": 3, "limit": 3}});
        assert_eq!(plan("e", &at_limit, 10).unwrap(), None);
        let ended = json!({"repeat": {"every": 1000, "count": 1, "endDate": 5}});
        assert_eq!(plan("e", &ended, 10).unwrap(), None);
        // a cron whose next time is past the end date
        let cron_end = json!({"repeat": {"pattern": "0 0 1 1 *", "count": 1, "endDate": 1_795_800_000_000i64}});
        assert_eq!(plan("c", &cron_end, 1_795_773_606_073).unwrap(), None);
    }

    #[test]
    fn rejects_schedulers_without_exactly_one_rule() {
        assert!(plan("x", &json!({"repeat": {}}), 1).is_err());
        assert!(plan(
            "x",
            &json!({"repeat": {"every": 5, "pattern": "* * * * *"}}),
            1
        )
        .is_err());
        assert!(plan("x", &json!({}), 1).is_err());
    }

    #[test]
    fn plans_an_upsert_like_node() {
        let none = Value::Object(Map::new());
        let cron = Repeat::cron("0 12 * * *").tz("Europe/Madrid").limit(5);
        let first = plan_upsert(
            "c",
            &cron,
            "echo",
            &json!({"attempts": 2}),
            1_795_773_606_073,
        )
        .unwrap()
        .unwrap();
        assert_eq!(first.at, Some(1_795_777_200_000));
        assert_eq!(
            first.scheduler,
            json!({"name": "echo", "pattern": "0 12 * * *", "tz": "Europe/Madrid", "limit": 5})
        );
        assert_eq!(
            first.opts["repeat"],
            json!({"pattern": "0 12 * * *", "tz": "Europe/Madrid", "limit": 5, "count": 1})
        );
        assert_eq!(
            (
                first.opts["attempts"].clone(),
                first.opts["prevMillis"].clone()
            ),
            (json!(2), json!(1_795_777_200_000i64))
        );
        // `every` with an offset keeps it; the time is the script's
        let every = Repeat {
            offset: Some(250),
            ..Repeat::every(1000)
        };
        let first = plan_upsert("e", &every, "e", &none, 5).unwrap().unwrap();
        assert_eq!(
            (first.at, first.scheduler["offset"].clone()),
            (None, json!(250))
        );
        assert_eq!(
            first.opts["repeat"],
            json!({"every": 1000, "offset": 250, "count": 1})
        );
        // never runs, or cannot
        assert_eq!(
            plan_upsert("e", &Repeat::every(1000).limit(0), "e", &none, 5).unwrap(),
            None
        );
        let ended = Repeat {
            end_date: Some(4),
            ..Repeat::every(1000)
        };
        assert!(plan_upsert("e", &ended, "e", &none, 5).is_err());
        let both = Repeat {
            every: Some(5),
            ..Repeat::cron("* * * * *")
        };
        assert!(plan_upsert("x", &both, "x", &none, 5).is_err());
        let start_and_now = Repeat {
            immediately: true,
            start_date: Some(9),
            ..Repeat::cron("* * * * *")
        };
        assert!(plan_upsert("x", &start_and_now, "x", &none, 5).is_err());
    }

    #[test]
    fn legacy_repeat_keys() {
        assert!(has_legacy_key_shape("tick:job1::Europe/Madrid:0 * * * *"));
        assert!(has_legacy_key_shape("tick:job1:1700000000000::5000"));
        assert!(!has_legacy_key_shape("every-2s"));
        assert!(!has_legacy_key_shape("a:b:c:d:e"));
    }
}
