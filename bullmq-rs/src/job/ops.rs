//! What can be done to one job: progress, logs, data, retry, promote,
//! delay and priority changes, removal. Each is one script call.

use serde_json::Value;

use super::{Job, JobState};
use crate::error::Result;

impl Job {
    /// Reports progress (a number or any JSON): stored in `progress` and
    /// emitted as a `progress` event.
    pub async fn update_progress(&mut self, progress: Value) -> Result<()> {
        self.queue.update_progress(&self.id, &progress).await?;
        self.progress = progress;
        Ok(())
    }

    /// Appends a line to the job's log (trimmed to `keepLogs`); returns the
    /// number of lines kept.
    pub async fn log(&self, line: &str) -> Result<i64> {
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
    pub async fn change_delay(&mut self, delay_ms: i64) -> Result<()> {
        self.queue.change_delay(&self.id, delay_ms).await?;
        self.delay = delay_ms;
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
