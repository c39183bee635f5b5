//! Reads the reply `fetchJobs` and `finishJobs` share:
//! `rateLimitTtl, nextDelayedTimestamp, blocked, id1, hash1, ...`.

use redis::Value as RedisValue;

use crate::error::{Error, Result};
use crate::job::{pairs_to_map, Job};
use crate::queue::Queue;

/// Jobs handed to this worker, and why there were not more.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    pub(crate) jobs: Vec<Job>,
    /// ms until the rate limit allows another job (0 = not limited).
    pub(crate) rate_limit_ttl: i64,
    /// When the next delayed job is due (ms since the epoch, 0 = none).
    pub(crate) next_delayed: f64,
    /// The queue is paused or at its global concurrency.
    pub(crate) blocked: bool,
}

fn text(v: RedisValue, what: &'static str) -> Result<String> {
    redis::from_redis_value(v).map_err(|e| Error::protocol(what, e.to_string()))
}

/// Parses `values`, which starts at the rate-limit ttl.
pub(crate) fn parse_fetched(queue: &Queue, values: Vec<RedisValue>, tokens: &mut dyn FnMut() -> String) -> Result<Fetched> {
    let mut it = values.into_iter();
    let ttl = it.next().map(|v| text(v, "fetch ttl")).transpose()?.unwrap_or_default();
    let next = it.next().map(|v| text(v, "fetch next delayed")).transpose()?.unwrap_or_default();
    let blocked = it.next().map(|v| text(v, "fetch blocked")).transpose()?.unwrap_or_default();
    let mut fetched = Fetched {
        jobs: Vec::new(),
        rate_limit_ttl: ttl.parse().unwrap_or(0),
        next_delayed: next.parse().unwrap_or(0.0),
        blocked: blocked == "1",
    };
    while let (Some(id), Some(hash)) = (it.next(), it.next()) {
        let id = text(id, "fetched job id")?;
        let hash: Vec<String> = redis::from_redis_value(hash).map_err(|e| Error::protocol("fetched job", e.to_string()))?;
        let mut job = Job::from_hash(queue.clone(), id, pairs_to_map(hash));
        job.token = Some(tokens());
        fetched.jobs.push(job);
    }
    Ok(fetched)
}
