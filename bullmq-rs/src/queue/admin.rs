//! Queue-wide administration: pause and resume, drain, clean, obliterate,
//! bulk retry and promotion.

use super::Queue;
use crate::error::{check, Error, Result};
use crate::keys::state_suffix;
use crate::script;
use crate::state::JobState;
use crate::time::now_ms;

impl Queue {
    /// Pauses the queue for every worker (BullMQ's `queue.pause()`).
    pub async fn pause(&self) -> Result<()> {
        self.pause_or_resume("paused").await
    }

    /// Resumes a paused queue.
    pub async fn resume(&self) -> Result<()> {
        self.pause_or_resume("resumed").await
    }

    async fn pause_or_resume(&self, what: &str) -> Result<()> {
        let k = self.keys();
        let _: i64 = script::PAUSE
            .call()
            .keys(k.core())
            .key(k.paused())
            .arg(what)
            .invoke(&mut self.con())
            .await?;
        Ok(())
    }

    /// Removes every job waiting to run (and delayed ones when asked);
    /// returns how many were removed.
    pub async fn drain(&self, include_delayed: bool) -> Result<u64> {
        let k = self.keys();
        script::DRAIN
            .call()
            .keys(k.core())
            .key(k.repeat())
            .arg(k.base())
            .arg(if include_delayed { "1" } else { "0" })
            .invoke(&mut self.con())
            .await
    }

    /// Removes up to `limit` jobs (0 = all) of `state` older than `grace_ms`;
    /// returns their ids and emits `cleaned`.
    pub async fn clean(&self, grace_ms: i64, limit: u64, state: JobState) -> Result<Vec<String>> {
        let unknown = || Error::invalid("state", "cannot clean jobs in an unknown state");
        let suffix = state_suffix(state).ok_or_else(unknown)?;
        let k = self.keys();
        let set = k.state(state).ok_or_else(unknown)?;
        script::CLEAN_JOBS_IN_SET
            .call()
            .key(set)
            .key(k.events())
            .key(k.repeat())
            .arg(k.base())
            .arg(now_ms() - grace_ms.max(0))
            .arg(limit)
            .arg(suffix)
            .invoke(&mut self.con())
            .await
    }

    /// Deletes the queue and all its data. Pauses it first; with active jobs
    /// it refuses unless `force`. Works in slices so Redis is never blocked
    /// for long.
    pub async fn obliterate(&self, force: bool) -> Result<()> {
        self.pause().await?;
        let k = self.keys();
        loop {
            let code: i64 = script::OBLITERATE
                .call()
                .keys(k.core())
                .arg(k.base())
                .arg(1000)
                .arg(if force { "1" } else { "" })
                .invoke(&mut self.con())
                .await?;
            match code {
                0 => return Ok(()),
                1 => continue,
                -2 => {
                    return Err(Error::invalid(
                        "obliterate",
                        "the queue has active jobs; pass force to delete them",
                    ))
                }
                c => return check(c, "obliterate", "").map(drop),
            }
        }
    }

    /// Moves failed (or completed) jobs finished before `timestamp` (now
    /// when None) back to `wait`, `count` per call, until none are left.
    pub async fn retry_jobs(
        &self,
        state: JobState,
        count: u64,
        timestamp: Option<i64>,
    ) -> Result<()> {
        if !matches!(state, JobState::Completed | JobState::Failed) {
            return Err(Error::invalid(
                "state",
                "retry_jobs takes completed or failed",
            ));
        }
        let until = timestamp.unwrap_or_else(now_ms).to_string();
        self.move_jobs_to_wait(state, count, &until).await
    }

    /// Makes every delayed job ready now, `count` per call.
    pub async fn promote_jobs(&self, count: u64) -> Result<()> {
        self.move_jobs_to_wait(JobState::Delayed, count, "+inf")
            .await
    }

    async fn move_jobs_to_wait(&self, state: JobState, count: u64, until: &str) -> Result<()> {
        let k = self.keys();
        let set = k
            .state(state)
            .ok_or_else(|| Error::invalid("state", "no jobs are kept in an unknown state"))?;
        let count = count.max(1);
        loop {
            let more: i64 = script::MOVE_JOBS_TO_WAIT
                .call()
                .keys(k.core())
                .key(&set)
                .arg(k.base())
                .arg(count)
                .arg(until)
                .arg(state.as_str())
                .invoke(&mut self.con())
                .await?;
            if more == 0 {
                return Ok(());
            }
        }
    }
}
