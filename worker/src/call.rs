//! What a handler receives for one job.

use bullmq_wire::{Job, JobError};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;

use crate::job_writes::JobWrites;

/// One call of `service.method`: the job, plus ways to report progress,
/// write to the job's log and notice cancellation.
#[derive(Debug)]
pub struct Call {
    job: Job,
    cancel: watch::Receiver<bool>,
    writes: JobWrites,
}

impl Call {
    pub(crate) fn new(job: Job, cancel: watch::Receiver<bool>, writes: JobWrites) -> Self {
        Call {
            job,
            cancel,
            writes,
        }
    }

    /// The job behind the call.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The raw params (the job's data).
    pub fn params_json(&self) -> &Value {
        &self.job.data
    }

    /// The params decoded into `T`; a mismatch fails the job without
    /// retries (retrying cannot fix bad params).
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_value(self.job.data.clone()).map_err(|e| {
            JobError::unrecoverable(format!("invalid params for {}: {e}", self.job.name))
        })
    }

    /// Reports progress (a number or any JSON); clients watching the job get
    /// it pushed. Best-effort: while Redis is unreachable the latest
    /// progress is kept and written once it is back, and this returns `Ok`;
    /// it fails only when Redis refuses the write (the job is gone).
    pub async fn progress(&mut self, progress: Value) -> Result<(), JobError> {
        self.writes
            .progress(progress.clone())
            .await
            .map_err(JobError::from)?;
        self.job.progress = progress;
        Ok(())
    }

    /// Appends a line to the job's log. Best-effort like
    /// [`Call::progress`]: lines are kept in order while Redis is
    /// unreachable (the oldest dropped past a bound).
    pub async fn log(&self, line: &str) -> Result<(), JobError> {
        self.writes.log(line).await.map_err(JobError::from)
    }

    /// True once the worker is shutting down and wants long handlers to
    /// stop early (their job is then handed back or retried).
    pub fn is_cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Resolves when the worker starts shutting down.
    pub async fn cancelled(&mut self) {
        while !*self.cancel.borrow() {
            if self.cancel.changed().await.is_err() {
                return;
            }
        }
    }
}
