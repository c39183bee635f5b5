//! Job schedulers from the producer side: create or replace one, read one,
//! remove one, as BullMQ's `Queue.upsertJobScheduler`, `getJobScheduler`
//! and `removeJobScheduler` do.

use std::collections::HashMap;

use serde_json::Value;

use super::Queue;
use crate::error::{check, Error, Result};
use crate::scheduler::{plan_upsert, JobScheduler, JobTemplate, Repeat};
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
    /// use bullmq_wire::{JobTemplate, Repeat};
    /// let nightly = Repeat::cron("0 3 * * *").tz("Europe/Madrid");
    /// queue.upsert_job_scheduler("nightly", &nightly, JobTemplate::new("report", serde_json::json!({}))).await?;
    /// queue.upsert_job_scheduler("heartbeat", &Repeat::every(10_000).limit(100), JobTemplate::default()).await?;
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
            .key(k.key("repeat"))
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

    /// Removes the scheduler `id` and its pending (delayed) iteration; false
    /// when there was no such scheduler.
    pub async fn remove_job_scheduler(&self, id: &str) -> Result<bool> {
        let k = self.keys();
        let removed: i64 = script::REMOVE_JOB_SCHEDULER
            .call()
            .key(k.key("repeat"))
            .key(k.key("delayed"))
            .key(k.key("events"))
            .arg(id)
            .arg(k.base())
            .invoke(&mut self.con())
            .await?;
        Ok(removed == 1)
    }

    /// The scheduler `id`, if it exists.
    pub async fn get_job_scheduler(&self, id: &str) -> Result<Option<JobScheduler>> {
        let k = self.keys();
        let (hash, next): (HashMap<String, String>, Option<f64>) = redis::pipe()
            .hgetall(k.key(&format!("repeat:{id}")))
            .zscore(k.key("repeat"), id)
            .query_async(&mut self.con())
            .await?;
        if hash.is_empty() {
            return Ok(None);
        }
        Ok(Some(scheduler_from_hash(id, hash, next)))
    }
}

fn scheduler_from_hash(
    id: &str,
    mut h: HashMap<String, String>,
    next: Option<f64>,
) -> JobScheduler {
    let int = |h: &HashMap<String, String>, k: &str| {
        h.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .map(|f| f as i64)
    };
    let json = |v: Option<String>| {
        v.and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Object(Default::default()))
    };
    let repeat = Repeat {
        every: int(&h, "every").and_then(|e| u64::try_from(e).ok()),
        pattern: h.remove("pattern"),
        tz: h.remove("tz"),
        limit: int(&h, "limit").and_then(|e| u64::try_from(e).ok()),
        start_date: int(&h, "startDate"),
        end_date: int(&h, "endDate"),
        immediately: false,
        offset: int(&h, "offset"),
    };
    JobScheduler {
        id: id.to_string(),
        name: h.remove("name").unwrap_or_default(),
        next: next.map(|n| n as i64),
        iteration_count: int(&h, "ic").unwrap_or(0),
        template_data: json(h.remove("data")),
        template_opts: json(h.remove("opts")),
        repeat,
    }
}
