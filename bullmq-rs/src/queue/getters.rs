//! Read-only queries: jobs, states, counts, logs, workers (what Bull Board
//! and `Queue` getters read).

use std::collections::HashMap;

use redis::Value as RedisValue;

use super::Queue;
use crate::error::{Error, Result};
use crate::job::{pairs_to_map, Job, JobState};
use crate::script;

/// A worker connected to a queue, as `CLIENT LIST` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// The connection name, `<prefix>:<base64(queue)>[:w:<name>]`.
    pub raw_name: String,
    /// The worker's name, when it has one.
    pub name: Option<String>,
    /// `addr` of the connection.
    pub addr: String,
}

impl Queue {
    /// One job, or `None` when it does not exist.
    pub async fn get_job(&self, job_id: &str) -> Result<Option<Job>> {
        let hash: HashMap<String, String> =
            redis::cmd("HGETALL").arg(self.keys().job(job_id)).query_async(&mut self.con()).await?;
        if hash.is_empty() {
            return Ok(None);
        }
        Ok(Some(Job::from_hash(self.clone(), job_id.to_string(), hash)))
    }

    /// Jobs in the given states (all states when empty), `start..=end` of
    /// each state (end -1 = all), newest first unless `asc` — `Queue.getJobs`.
    pub async fn get_jobs(&self, states: &[JobState], start: i64, end: i64, asc: bool) -> Result<Vec<Job>> {
        let states: Vec<JobState> = if states.is_empty() { JobState::ALL.to_vec() } else { states.to_vec() };
        let k = self.keys();
        let mut call = script::GET_JOBS.call().key(k.key("meta")).arg(k.base()).arg(start).arg(end).arg(if asc {
            "1"
        } else {
            "0"
        });
        for s in &states {
            if let Some(suffix) = s.key_suffix() {
                call.push_arg(suffix);
            }
        }
        let flat: Vec<RedisValue> = call.invoke(&mut self.con()).await?;
        let mut jobs = Vec::with_capacity(flat.len() / 2);
        let mut seen = std::collections::HashSet::new();
        let mut it = flat.into_iter();
        while let (Some(id), Some(hash)) = (it.next(), it.next()) {
            let id: String = redis::from_redis_value(id).map_err(|e| Error::protocol("getJobs", e.to_string()))?;
            let hash: Vec<String> =
                redis::from_redis_value(hash).map_err(|e| Error::protocol("getJobs", e.to_string()))?;
            if seen.insert(id.clone()) {
                jobs.push(Job::from_hash(self.clone(), id, pairs_to_map(hash)));
            }
        }
        Ok(jobs)
    }

    /// Job counts per state (all states when empty), in one round trip.
    /// A BullMQ <= 4 marker (`0:<delay>`) at the tail of `wait` is not a
    /// job and is not counted, as `getJobCounts` does.
    pub async fn get_job_counts(&self, states: &[JobState]) -> Result<HashMap<JobState, u64>> {
        let states: Vec<JobState> = if states.is_empty() { JobState::ALL.to_vec() } else { states.to_vec() };
        let mut pipe = redis::pipe();
        for s in &states {
            match s.key_suffix() {
                Some(suffix) if s.is_list() => pipe.cmd("LLEN").arg(self.keys().key(suffix)),
                Some(suffix) => pipe.cmd("ZCARD").arg(self.keys().key(suffix)),
                None => pipe.cmd("ECHO").arg(0),
            };
            if *s == JobState::Waiting {
                pipe.cmd("LINDEX").arg(self.keys().key("wait")).arg(-1);
            }
        }
        let replies: Vec<RedisValue> = pipe.query_async(&mut self.con()).await?;
        let mut replies = replies.into_iter();
        let mut counts = HashMap::with_capacity(states.len());
        for s in states {
            let n: u64 = redis::from_redis_value(replies.next().unwrap_or(RedisValue::Nil))
                .map_err(|e| Error::protocol("getJobCounts", e.to_string()))?;
            let legacy_marker = s == JobState::Waiting
                && redis::from_redis_value::<Option<String>>(replies.next().unwrap_or(RedisValue::Nil))
                    .ok()
                    .flatten()
                    .is_some_and(|tail| tail.starts_with("0:"));
            counts.insert(s, if legacy_marker { n.saturating_sub(1) } else { n });
        }
        Ok(counts)
    }

    /// The state of a job (`Unknown` when it does not exist).
    pub async fn get_job_state(&self, job_id: &str) -> Result<JobState> {
        let k = self.keys();
        let state: String =
            script::GET_STATE.call().key(k.key("meta")).arg(k.base()).arg(job_id).invoke(&mut self.con()).await?;
        state.parse()
    }

    /// A job's log lines `start..=end` (oldest first unless `asc` is false)
    /// and the total number of lines.
    pub async fn get_job_logs(&self, job_id: &str, start: i64, end: i64, asc: bool) -> Result<(Vec<String>, u64)> {
        let key = self.keys().job_logs(job_id);
        let (first, last) = if asc { (start, end) } else { (-(end + 1), -(start + 1)) };
        let (mut lines, count): (Vec<String>, u64) = redis::pipe()
            .cmd("LRANGE")
            .arg(&key)
            .arg(first)
            .arg(last)
            .cmd("LLEN")
            .arg(&key)
            .query_async(&mut self.con())
            .await?;
        if !asc {
            lines.reverse();
        }
        Ok((lines, count))
    }

    /// Whether the queue is paused globally.
    pub async fn is_paused(&self) -> Result<bool> {
        Ok(redis::cmd("HEXISTS").arg(self.keys().key("meta")).arg("paused").query_async(&mut self.con()).await?)
    }

    /// Workers of any language blocked on this queue, found by their
    /// connection names like `Queue.getWorkers()` does.
    pub async fn get_workers(&self) -> Result<Vec<WorkerInfo>> {
        let list: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut self.con()).await?;
        let base = self.keys().worker_client_name(None);
        let named = format!("{base}:w:");
        let mut workers = Vec::new();
        for line in list.lines() {
            let field = |k: &str| {
                line.split(' ').find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('='))).unwrap_or("")
            };
            let raw = field("name");
            if raw == base || raw.starts_with(&named) {
                workers.push(WorkerInfo {
                    raw_name: raw.to_string(),
                    name: raw.strip_prefix(&named).map(str::to_string),
                    addr: field("addr").to_string(),
                });
            }
        }
        Ok(workers)
    }
}
