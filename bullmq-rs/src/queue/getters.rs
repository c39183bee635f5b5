//! Read-only queries on a queue: states, counts, logs, metrics, workers
//! (what Bull Board and `Queue` getters read; jobs themselves are read in
//! `job/read.rs`).

use std::collections::HashMap;

use redis::Value as RedisValue;

use super::Queue;
use crate::error::{Error, Result};
use crate::script;
use crate::state::JobState;

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

/// The per-minute counts a worker keeps for finished jobs when metrics are
/// on (BullMQ's `getMetrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Jobs counted in all.
    pub count: i64,
    /// When the last point was taken (ms), 0 when never.
    pub prev_ts: i64,
    /// `count` when the last point was taken.
    pub prev_count: i64,
    /// Jobs per minute, newest first, in the range asked for.
    pub data: Vec<i64>,
    /// How many points are kept in all.
    pub points: i64,
}

impl Queue {
    /// The per-minute metrics of `Completed` or `Failed` jobs, points
    /// `start..=end` (newest first; -1 = the last), as BullMQ's `getMetrics`.
    pub async fn get_metrics(&self, kind: JobState, start: i64, end: i64) -> Result<Metrics> {
        let kind = match kind {
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            other => {
                return Err(Error::invalid(
                    "metrics kind",
                    format!("metrics are kept for completed and failed jobs, not {other:?}"),
                ))
            }
        };
        let (key, data_key) = self.keys().metrics(kind);
        let (meta, data, points): (Vec<Option<String>>, Vec<String>, i64) = redis::pipe()
            .atomic()
            .cmd("HMGET")
            .arg(&key)
            .arg("count")
            .arg("prevTS")
            .arg("prevCount")
            .lrange(&data_key, start as isize, end as isize)
            .llen(&data_key)
            .query_async(&mut self.con())
            .await?;
        let int = |v: Option<&Option<String>>| {
            v.and_then(|s| s.as_deref())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        };
        Ok(Metrics {
            count: int(meta.first()),
            prev_ts: int(meta.get(1)),
            prev_count: int(meta.get(2)),
            data: data.iter().map(|p| p.parse().unwrap_or(0)).collect(),
            points,
        })
    }

    /// Ms until the rate limiter lets another job start (0: now), measured
    /// against `max_jobs` or else the queue's global rate limit, as BullMQ's
    /// `getRateLimitTtl`; without either, the limiter key's PTTL (negative
    /// when there is no limiter key).
    pub async fn get_rate_limit_ttl(&self, max_jobs: Option<u64>) -> Result<i64> {
        let k = self.keys();
        script::GET_RATE_LIMIT_TTL
            .call()
            .key(k.limiter())
            .key(k.meta())
            .arg(max_jobs.unwrap_or(0))
            .invoke(&mut self.con())
            .await
    }

    /// Job counts per state (all states when empty), in one round trip.
    /// A BullMQ <= 4 marker (`0:<delay>`) at the tail of `wait` is not a
    /// job and is not counted, as `getJobCounts` does.
    pub async fn get_job_counts(&self, states: &[JobState]) -> Result<HashMap<JobState, u64>> {
        let states: Vec<JobState> = if states.is_empty() {
            JobState::ALL.to_vec()
        } else {
            states.to_vec()
        };
        let mut pipe = redis::pipe();
        for s in &states {
            match self.keys().state(*s) {
                Some(key) if s.is_list() => pipe.cmd("LLEN").arg(key),
                Some(key) => pipe.cmd("ZCARD").arg(key),
                None => pipe.cmd("ECHO").arg(0),
            };
            if *s == JobState::Waiting {
                pipe.cmd("LINDEX").arg(self.keys().wait()).arg(-1);
            }
        }
        let replies: Vec<RedisValue> = pipe.query_async(&mut self.con()).await?;
        let mut replies = replies.into_iter();
        let mut counts = HashMap::with_capacity(states.len());
        for s in states {
            let n: u64 = redis::from_redis_value(replies.next().unwrap_or(RedisValue::Nil))
                .map_err(|e| Error::protocol("getJobCounts", e.to_string()))?;
            let legacy_marker = s == JobState::Waiting
                && redis::from_redis_value::<Option<String>>(
                    replies.next().unwrap_or(RedisValue::Nil),
                )
                .ok()
                .flatten()
                .is_some_and(|tail| tail.starts_with("0:"));
            counts.insert(
                s,
                if legacy_marker {
                    n.saturating_sub(1)
                } else {
                    n
                },
            );
        }
        Ok(counts)
    }

    /// The state of a job (`Unknown` when it does not exist).
    pub async fn get_job_state(&self, job_id: &str) -> Result<JobState> {
        let k = self.keys();
        let state: String = script::GET_STATE
            .call()
            .key(k.meta())
            .arg(k.base())
            .arg(job_id)
            .invoke(&mut self.con())
            .await?;
        state.parse()
    }

    /// A job's log lines `start..=end` (oldest first unless `asc` is false)
    /// and the total number of lines.
    pub async fn get_job_logs(
        &self,
        job_id: &str,
        start: i64,
        end: i64,
        asc: bool,
    ) -> Result<(Vec<String>, u64)> {
        let key = self.keys().job_logs(job_id);
        let (first, last) = if asc {
            (start, end)
        } else {
            (-(end + 1), -(start + 1))
        };
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
        Ok(redis::cmd("HEXISTS")
            .arg(self.keys().meta())
            .arg("paused")
            .query_async(&mut self.con())
            .await?)
    }

    /// Round trip of a `PING` to the server holding this queue's keys (on
    /// a cluster, the master serving its slot): what a health check of a
    /// service on this queue should ask.
    pub async fn ping(&self) -> Result<std::time::Duration> {
        let started = std::time::Instant::now();
        let slot = crate::connection::slot::key_slot(self.keys().meta().as_bytes());
        self.con().query_on_slot(redis::cmd("PING"), slot).await?;
        Ok(started.elapsed())
    }

    /// Workers of any language blocked on this queue, found by their
    /// connection names like `Queue.getWorkers()` does (on a cluster, on
    /// the master serving the queue's slot, where workers block).
    pub async fn get_workers(&self) -> Result<Vec<WorkerInfo>> {
        let mut list_clients = redis::cmd("CLIENT");
        list_clients.arg("LIST");
        let slot = crate::connection::slot::key_slot(self.keys().meta().as_bytes());
        let reply = self.con().query_on_slot(list_clients, slot).await?;
        let list: String = redis::from_redis_value(reply)
            .map_err(|e| Error::protocol("CLIENT LIST", e.to_string()))?;
        let base = self.keys().worker_client_name(None);
        let named = self.keys().named_worker_client_prefix();
        let mut workers = Vec::new();
        for line in list.lines() {
            let field = |k: &str| {
                line.split(' ')
                    .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                    .unwrap_or("")
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
