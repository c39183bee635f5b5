//! Runs a [`Registry`]: one BullMQ worker per service, each dispatching jobs
//! to the handler named by the job, until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bullmq_wire::{Connection, JobError, Processor, Worker, WorkerOptions};
use tokio::sync::watch;

use crate::call::Call;
use crate::health::{self, Health};
use crate::job_writes::JobWrites;
use crate::registry::Registry;

/// How the runtime runs each service's worker.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Worker settings shared by every service (concurrency, name, ...).
    pub worker: WorkerOptions,
    /// After shutdown is requested, how long running jobs may take before
    /// they are handed back to the queue.
    pub shutdown_grace: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            worker: WorkerOptions::default(),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// How long a finished handler's kept progress/log writes are retried
/// before its result is written anyway.
const SETTLE_WRITES_WITHIN: Duration = Duration::from_secs(30);

/// A running set of workers.
pub struct Runtime {
    /// The workers (one per service) and what [`Health`] reads.
    shared: Arc<health::Shared>,
    cancel: watch::Sender<bool>,
    grace: Duration,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("services", &self.shared.services())
            .finish()
    }
}

impl Runtime {
    /// Starts one worker per service of `registry`.
    pub async fn start(
        conn: &Connection,
        registry: Registry,
        options: RuntimeOptions,
    ) -> bullmq_wire::Result<Self> {
        let registry = Arc::new(registry);
        let (cancel, cancel_rx) = watch::channel(false);
        let mut workers = Vec::new();
        for service in registry.services() {
            let processor = dispatcher(registry.clone(), service.to_string(), cancel_rx.clone());
            let worker =
                Worker::start_with(service, conn, options.worker.clone(), processor).await?;
            workers.push((service.to_string(), worker));
            tracing::info!(service, "serving");
        }
        Ok(Runtime {
            shared: health::Shared::new(workers),
            cancel,
            grace: options.shutdown_grace,
        })
    }

    /// Runs until `shutdown` resolves, then stops fetching, tells handlers
    /// (`Call::cancelled`), waits up to the grace period for running jobs
    /// and hands back the rest.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        self.close().await;
    }

    /// Graceful stop (see [`Runtime::run_until`]).
    pub async fn close(self) {
        tracing::info!("shutting down: finishing running jobs");
        let _ = self.cancel.send(true);
        let grace = self.grace;
        let workers = self.shared.take_for_close();
        futures::future::join_all(workers.into_iter().map(|(_, w)| w.close_within(grace))).await;
        self.shared.stopped();
    }

    /// A handle that reports this runtime's state (running, stopping,
    /// stopped, the last error a worker reported), also after it closed.
    /// Errors are recorded from the first call on; call it once.
    pub fn health(&self) -> Health {
        Health::watch(self.shared.clone())
    }
}

fn dispatcher(
    registry: Arc<Registry>,
    service: String,
    cancel: watch::Receiver<bool>,
) -> Processor {
    Arc::new(move |job| {
        let handler = registry
            .service(&service)
            .and_then(|m| m.get(&job.name))
            .cloned();
        let cancel = cancel.clone();
        let method = format!("{service}.{}", job.name);
        Box::pin(async move {
            let Some(h) = handler else {
                return Err(JobError::unrecoverable(format!(
                    "unknown method {method}: no handler registered"
                )));
            };
            let writes = JobWrites::new(&job);
            let result = h(Call::new(job, cancel, writes.clone())).await;
            writes.settle(SETTLE_WRITES_WITHIN).await;
            result
        })
    })
}
