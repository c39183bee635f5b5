//! Reading jobs from their hashes: one by id, or pages of them by state
//! (`Queue::get_job`, `Queue::get_jobs`).

use std::collections::HashMap;

use redis::Value as RedisValue;

use super::{pairs, Job};
use crate::error::{Error, Result};
use crate::keys::state_suffix;
use crate::queue::Queue;
use crate::script;
use crate::state::JobState;

impl Queue {
    /// One job, or `None` when it does not exist.
    pub async fn get_job(&self, job_id: &str) -> Result<Option<Job>> {
        let hash: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys().job(job_id))
            .query_async(&mut self.con())
            .await?;
        if hash.is_empty() {
            return Ok(None);
        }
        Ok(Some(Job::from_hash(self.clone(), job_id.to_string(), hash)))
    }

    /// Jobs in the given states (all states when empty), `start..=end` of
    /// each state (end -1 = all), newest first unless `asc` — `Queue.getJobs`.
    pub async fn get_jobs(
        &self,
        states: &[JobState],
        start: i64,
        end: i64,
        asc: bool,
    ) -> Result<Vec<Job>> {
        let states: Vec<JobState> = if states.is_empty() {
            JobState::ALL.to_vec()
        } else {
            states.to_vec()
        };
        let k = self.keys();
        let mut call = script::GET_JOBS
            .call()
            .key(k.meta())
            .arg(k.base())
            .arg(start)
            .arg(end)
            .arg(if asc { "1" } else { "0" });
        for s in &states {
            if let Some(suffix) = state_suffix(*s) {
                call.push_arg(suffix);
            }
        }
        let flat: Vec<RedisValue> = call.invoke(&mut self.con()).await?;
        let mut jobs = Vec::with_capacity(flat.len() / 2);
        let mut seen = std::collections::HashSet::new();
        let mut it = flat.into_iter();
        while let (Some(id), Some(hash)) = (it.next(), it.next()) {
            let id: String = redis::from_redis_value(id)
                .map_err(|e| Error::protocol("getJobs", e.to_string()))?;
            let hash: Vec<String> = redis::from_redis_value(hash)
                .map_err(|e| Error::protocol("getJobs", e.to_string()))?;
            if seen.insert(id.clone()) {
                jobs.push(Job::from_fields(self.clone(), id, pairs(hash)));
            }
        }
        Ok(jobs)
    }
}
