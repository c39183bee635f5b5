//! A worker whose handler takes the job's data as the caller's own type and
//! returns any serializable result: `Worker::start_typed`. A payload that
//! does not fit the type fails its job at once (no retries); the job itself
//! is still given to the handler for progress, logs and children.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{JobError, Worker, WorkerOptions};
use crate::connection::Connection;
use crate::error::Result;
use crate::job::Job;

impl Worker {
    /// Starts a worker whose handler gets the data as `D` and the job, and
    /// returns a result `R` stored as its JSON.
    ///
    /// ```no_run
    /// # async fn demo(conn: bullmq_wire::Connection) -> bullmq_wire::Result<()> {
    /// use bullmq_wire::{JobError, Worker, WorkerOptions};
    /// #[derive(serde::Deserialize)]
    /// struct Email { to: String }
    /// let worker = Worker::start_typed("emails", &conn, WorkerOptions::default(),
    ///     |email: Email, _job| async move { Ok::<_, JobError>(format!("sent to {}", email.to)) },
    /// ).await?;
    /// worker.close().await;
    /// # Ok(()) }
    /// ```
    pub async fn start_typed<D, R, F, Fut>(
        queue_name: &str,
        conn: &Connection,
        options: WorkerOptions,
        handler: F,
    ) -> Result<Self>
    where
        D: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(D, Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<R, JobError>> + Send + 'static,
    {
        let handler = std::sync::Arc::new(handler);
        Self::start(queue_name, conn, options, move |job: Job| {
            let handler = handler.clone();
            async move {
                let data = job.data_as::<D>()?;
                let result = handler(data, job).await?;
                serde_json::to_value(result)
                    .map_err(|e| JobError::new(format!("the result is not JSON: {e}")))
            }
        })
        .await
    }
}
