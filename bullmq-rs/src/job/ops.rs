//! What can be done to one job: progress, logs, data, retry, promote,
//! delay and priority changes, removal. Each is one script call, made by
//! id on the job's queue (`queue.promote(id)`, what the gateway uses) or
//! on a `Job` already read (`job.promote()`), which delegates to the first.

use std::time::Duration;

use serde_json::Value;

use super::Job;
use crate::error::{check_job, Error, Result};
use crate::options::millis::to_ms_i64;
use crate::options::MAX_PRIORITY;
use crate::queue::Queue;
use crate::script;
use crate::state::JobState;
use crate::time::now_ms;

impl Queue {
    /// Sets a job's progress and emits `progress`.
    pub async fn update_progress(&self, job_id: &str, progress: &Value) -> Result<()> {
        self.set_progress(job_id, progress, None).await
    }

    /// [`Queue::update_progress`], also published on `job:{jobId}` as
    /// `{"type":"progress","jobId":..,"progress":..}` when `publish` is
    /// some, and on the channel it names, if any (what a worker with
    /// `WorkerOptions::publish_results` does: see [`Job::progress_publishing`]
    /// and `JobOptions::reply_to`).
    pub async fn set_progress(
        &self,
        job_id: &str,
        progress: &Value,
        publish: Option<&str>,
    ) -> Result<()> {
        let k = self.keys();
        let code: i64 = script::UPDATE_PROGRESS
            .call()
            .key(k.job(job_id))
            .key(k.events())
            .key(k.meta())
            .arg(job_id)
            .arg(progress.to_string())
            .arg(if publish.is_some() { "1" } else { "" })
            .arg(publish.unwrap_or(""))
            .invoke(&mut self.con())
            .await?;
        check_job(self.name(), code, "updateProgress", job_id).map(drop)
    }

    /// Appends a log line; returns how many lines the job keeps.
    pub async fn add_log(&self, job_id: &str, line: &str, keep_logs: Option<i64>) -> Result<i64> {
        let k = self.keys();
        let code: i64 = script::ADD_LOG
            .call()
            .key(k.job(job_id))
            .key(k.job_logs(job_id))
            .arg(line)
            .arg(keep_logs.map(|n| n.to_string()).unwrap_or_default())
            .invoke(&mut self.con())
            .await?;
        check_job(self.name(), code, "addLog", job_id)
    }

    /// Replaces a job's data.
    pub async fn update_data(&self, job_id: &str, data: &Value) -> Result<()> {
        let code: i64 = script::UPDATE_DATA
            .call()
            .key(self.keys().job(job_id))
            .arg(data.to_string())
            .invoke(&mut self.con())
            .await?;
        check_job(self.name(), code, "updateData", job_id).map(drop)
    }

    /// Sends a completed or failed job back to `wait` (BullMQ's `job.retry`);
    /// `reset_attempts` clears its attempt counters.
    pub async fn reprocess(
        &self,
        job_id: &str,
        state: JobState,
        lifo: bool,
        reset_attempts: bool,
    ) -> Result<()> {
        if !matches!(state, JobState::Completed | JobState::Failed) {
            return Err(Error::invalid(
                "state",
                "only completed or failed jobs can be retried",
            ));
        }
        let k = self.keys();
        let finished = match state {
            JobState::Completed => k.completed(),
            _ => k.failed(),
        };
        let reset = if reset_attempts { "1" } else { "0" };
        let code: i64 = script::REPROCESS_JOB
            .call()
            .keys(k.core())
            .key(finished)
            .arg(k.base())
            .arg(job_id)
            .arg(state.as_str())
            .arg(if lifo { "RPUSH" } else { "LPUSH" })
            .arg(reset)
            .arg(reset)
            .invoke(&mut self.con())
            .await?;
        check_job(self.name(), code, "reprocessJob", job_id).map(drop)
    }

    /// Makes a delayed job ready now.
    pub async fn promote(&self, job_id: &str) -> Result<()> {
        let k = self.keys();
        let code: i64 = script::PROMOTE
            .call()
            .keys(k.core())
            .arg(k.base())
            .arg(job_id)
            .invoke(&mut self.con())
            .await?;
        check_job(self.name(), code, "promote", job_id).map(drop)
    }

    /// Gives a delayed job a new delay from now.
    pub async fn change_delay(&self, job_id: &str, delay: Duration) -> Result<()> {
        let k = self.keys();
        let code: i64 = script::CHANGE_DELAY
            .call()
            .keys(k.core())
            .arg(k.base())
            .arg(job_id)
            .arg(to_ms_i64(delay))
            .arg(now_ms())
            .invoke(&mut self.con())
            .await?;
        check_job(self.name(), code, "changeDelay", job_id).map(drop)
    }

    /// Changes a job's priority.
    pub async fn change_priority(&self, job_id: &str, priority: i64, lifo: bool) -> Result<()> {
        if !(0..=i64::from(MAX_PRIORITY)).contains(&priority) {
            return Err(Error::invalid(
                "priority",
                format!("{priority} is outside 0..={MAX_PRIORITY}"),
            ));
        }
        let k = self.keys();
        let code: i64 = script::CHANGE_PRIORITY
            .call()
            .keys(k.core())
            .arg(k.base())
            .arg(job_id)
            .arg(priority)
            .arg(if lifo { "1" } else { "" })
            .invoke(&mut self.con())
            .await?;
        check_job(self.name(), code, "changePriority", job_id).map(drop)
    }

    /// Removes a job (not one a worker holds); true when it was removed.
    pub async fn remove(&self, job_id: &str) -> Result<bool> {
        let k = self.keys();
        let code: i64 = script::REMOVE_JOB
            .call()
            .key(k.meta())
            .key(k.repeat())
            .arg(k.base())
            .arg(job_id)
            .invoke(&mut self.con())
            .await?;
        check_job(self.name(), code, "removeJob", job_id).map(|c| c == 1)
    }
}

impl Job {
    /// Where this job's progress is also published, as
    /// [`Queue::set_progress`] takes it: `Some` (the job's `replyTo`
    /// channel, or "" for none besides `job:{jobId}`) when a worker with
    /// `publish_results` fetched it, else `None`.
    pub fn progress_publishing(&self) -> Option<&str> {
        self.publish_progress
            .then(|| self.opts.reply_to.as_deref().unwrap_or(""))
    }

    /// Reports progress (a number or any JSON): stored in `progress` and
    /// emitted as a `progress` event.
    pub async fn update_progress(&mut self, progress: Value) -> Result<()> {
        match &self.recorded {
            Some(recorded) => recorded.push_progress(progress.clone()),
            None => {
                let publish = self.progress_publishing();
                self.queue
                    .set_progress(&self.id, &progress, publish)
                    .await?
            }
        }
        if let Some(hook) = &self.on_progress {
            hook(&self.id, &progress);
        }
        self.progress = progress;
        Ok(())
    }

    /// Appends a line to the job's log (trimmed to `keepLogs`); returns the
    /// number of lines kept.
    pub async fn log(&self, line: &str) -> Result<i64> {
        if let Some(recorded) = &self.recorded {
            return Ok(recorded.push_log(line));
        }
        self.queue
            .add_log(&self.id, line, self.opts.keep_logs)
            .await
    }

    /// Replaces the job's data.
    pub async fn update_data(&mut self, data: Value) -> Result<()> {
        self.queue.update_data(&self.id, &data).await?;
        self.data = data;
        Ok(())
    }

    /// Sends a completed or failed job back to run again (BullMQ's
    /// `job.retry(state)`), keeping its attempt counters.
    pub async fn retry(&self, state: JobState) -> Result<()> {
        self.queue
            .reprocess(&self.id, state, self.opts.lifo, false)
            .await
    }

    /// Makes a delayed job ready now.
    pub async fn promote(&self) -> Result<()> {
        self.queue.promote(&self.id).await
    }

    /// Gives a delayed job a new delay, counted from now.
    pub async fn change_delay(&mut self, delay: Duration) -> Result<()> {
        self.queue.change_delay(&self.id, delay).await?;
        self.delay = delay;
        Ok(())
    }

    /// Changes the job's priority (0 = none); with `lifo` a waiting job goes
    /// to the front of its band.
    pub async fn change_priority(&mut self, priority: i64, lifo: bool) -> Result<()> {
        self.queue.change_priority(&self.id, priority, lifo).await?;
        self.priority = priority;
        Ok(())
    }

    /// Removes the job unless a worker holds it; true when it was removed.
    pub async fn remove(&self) -> Result<bool> {
        self.queue.remove(&self.id).await
    }

    /// The job's current state.
    pub async fn state(&self) -> Result<JobState> {
        self.queue.get_job_state(&self.id).await
    }
}
