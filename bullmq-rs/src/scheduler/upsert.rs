//! Creating or replacing a job scheduler from the producer side, as
//! BullMQ's `Queue.upsertJobScheduler` does: the first iteration is planned
//! here and added by one script call.

use serde_json::{Map, Value};

use super::cron::next_cron_run;
use super::rule::{iteration_opts, one_rule, JobTemplate, Repeat};
use crate::error::{check, Error, Result};
use crate::options::millis::to_ms;
use crate::queue::Queue;
use crate::script;
use crate::time::now_ms;

impl Queue {
    /// Creates the scheduler `id`, or replaces its rule and template (its
    /// pending iteration is replaced, its iteration count kept), and adds
    /// its next iteration. Returns that iteration's job id, or `None` when
    /// the scheduler would never run (a zero `limit`, or no cron match
    /// before `end_date`).
    ///
    /// ```no_run
    /// # async fn demo(queue: bullmq_wire::Queue) -> bullmq_wire::Result<()> {
    /// use std::time::Duration;
    /// use bullmq_wire::{JobTemplate, Repeat};
    /// let nightly = Repeat::cron("0 3 * * *").tz("Europe/Madrid");
    /// queue.upsert_job_scheduler("nightly", &nightly, JobTemplate::new("report", serde_json::json!({}))).await?;
    /// queue.upsert_job_scheduler("heartbeat", &Repeat::every(Duration::from_secs(10)).limit(100), JobTemplate::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn upsert_job_scheduler(
        &self,
        id: &str,
        repeat: &Repeat,
        template: JobTemplate,
    ) -> Result<Option<String>> {
        if id.is_empty() {
            return Err(Error::invalid("job scheduler", "the scheduler id is empty"));
        }
        template.opts.validate()?;
        let name = template.name.clone().unwrap_or_else(|| id.to_string());
        // the template as BullMQ stores it: no `attempts` unless given
        let mut template_opts = template.opts.to_stored_json();
        if template.opts.attempts.is_none() {
            if let Some(m) = template_opts.as_object_mut() {
                m.remove("attempts");
            }
        }
        let now = now_ms();
        let Some(first) = plan_upsert(id, repeat, &name, &template_opts, now)? else {
            return Ok(None);
        };
        let k = self.keys();
        let reply: redis::Value = script::UPSERT_JOB_SCHEDULER
            .call()
            .keys(k.core())
            .key(k.repeat())
            .key(k.id())
            .arg(k.base())
            .arg(now)
            .arg(id)
            .arg(first.at.map(|t| t.to_string()).unwrap_or_default())
            .arg(first.scheduler.to_string())
            .arg(template.data.to_string())
            .arg(template_opts.to_string())
            .arg(first.opts.to_string())
            .invoke(&mut self.con())
            .await?;
        match reply {
            redis::Value::Array(parts) => match parts.first() {
                Some(v) => {
                    Ok(Some(redis::from_redis_value_ref(v).map_err(|e| {
                        Error::protocol("upsertJobScheduler", e.to_string())
                    })?))
                }
                None => Err(Error::protocol("upsertJobScheduler", "empty reply")),
            },
            redis::Value::Int(code) => {
                // -10 / -11: the iteration's id is taken
                check(code, "upsertJobScheduler", id)?;
                Err(Error::protocol(
                    "upsertJobScheduler",
                    format!("status {code} instead of a job id"),
                ))
            }
            other => Err(Error::protocol(
                "upsertJobScheduler",
                format!("unexpected reply {other:?}"),
            )),
        }
    }
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
    let every = repeat.every.map(to_ms).filter(|e| *e > 0);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use serde_json::json;

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
            ..Repeat::every(Duration::from_secs(1))
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
            plan_upsert(
                "e",
                &Repeat::every(Duration::from_secs(1)).limit(0),
                "e",
                &none,
                5
            )
            .unwrap(),
            None
        );
        let ended = Repeat {
            end_date: Some(4),
            ..Repeat::every(Duration::from_secs(1))
        };
        assert!(plan_upsert("e", &ended, "e", &none, 5).is_err());
        let both = Repeat {
            every: Some(Duration::from_millis(5)),
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
}
