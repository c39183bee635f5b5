//! The worker side of a job scheduler: when a worker takes a job a
//! scheduler produced (`rjk` set), it adds the scheduler's next iteration
//! before running the handler, as a BullMQ 6 worker does.

use chrono::DateTime;
use serde_json::{Map, Value};

use super::cron::next_cron_run;
use super::rule::{iteration_opts, one_rule};
use crate::error::{Error, Result};
use crate::job::Job;
use crate::script;
use crate::time::now_ms;

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
            .arg(k.scheduler(scheduler_id))
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
        .key(k.repeat())
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
    fn legacy_repeat_keys() {
        assert!(has_legacy_key_shape("tick:job1::Europe/Madrid:0 * * * *"));
        assert!(has_legacy_key_shape("tick:job1:1700000000000::5000"));
        assert!(!has_legacy_key_shape("every-2s"));
        assert!(!has_legacy_key_shape("a:b:c:d:e"));
    }
}
