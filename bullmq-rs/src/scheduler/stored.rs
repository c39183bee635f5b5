//! A job scheduler as stored (`repeat` and `repeat:<id>`): reading and
//! removing one, as BullMQ's `getJobScheduler` and `removeJobScheduler`.

use std::collections::HashMap;

use serde_json::Value;

use super::rule::{JobScheduler, Repeat};
use crate::error::Result;
use crate::options::millis::from_ms;
use crate::queue::Queue;
use crate::script;

impl Queue {
    /// Removes the scheduler `id` and its pending (delayed) iteration; false
    /// when there was no such scheduler.
    pub async fn remove_job_scheduler(&self, id: &str) -> Result<bool> {
        let k = self.keys();
        let removed: i64 = script::REMOVE_JOB_SCHEDULER
            .call()
            .key(k.repeat())
            .key(k.delayed())
            .key(k.events())
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
            .hgetall(k.scheduler(id))
            .zscore(k.repeat(), id)
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
        every: int(&h, "every").filter(|e| *e > 0).map(from_ms),
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
