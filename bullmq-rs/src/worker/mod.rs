//! Workers: run a handler for each job of a queue, concurrently, alongside
//! BullMQ workers of any language.
//!
//! One task (`run_loop`) owns the queue for the worker: it fetches jobs for
//! free slots and settles finished ones, batching both into one script call
//! whenever several are ready (`script_call` writes that call and reads its
//! reply). Around it: `marker` blocks on the queue's marker while there is
//! nothing to do, with the next fetch waiting behind it, `locks` renews every held lock with
//! one call per interval, `stalled` runs BullMQ's stalled-job sweep.

mod backoff;
mod in_flight;
mod job_error;
mod locks;
mod marker;
mod outcome;
mod reply;
mod run_loop;
mod script_call;
mod stalled;
mod typed;
mod watch_events;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use job_error::JobError;
pub use watch_events::WorkerEvent;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::job::Job;
use crate::options::KeepJobs;
use crate::queue::Queue;

/// A job handler: gets the job, returns its result or a [`JobError`].
pub type Processor = Arc<dyn Fn(Job) -> BoxFuture<'static, Result<Value, JobError>> + Send + Sync>;

/// A custom backoff (`backoff.type` not fixed/exponential): gets the attempt
/// number (1-based), the type, the error and the job; returns the delay
/// (whole ms on the wire), or None to fail the job now.
pub type BackoffStrategy =
    Arc<dyn Fn(i64, &str, &JobError, &Job) -> Option<Duration> + Send + Sync>;

/// A worker-side rate limit: at most `max` jobs started per `duration`,
/// shared by every worker of the queue through the `limiter` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Jobs per window.
    pub max: u64,
    /// The window.
    pub duration: Duration,
}

/// Worker settings; the defaults are BullMQ's.
#[derive(Clone)]
pub struct WorkerOptions {
    /// Jobs processed at once (1).
    pub concurrency: usize,
    /// Shown by `Queue.getWorkers()` and stored in each job's `pb`.
    pub name: Option<String>,
    /// How long a job's lock lasts without renewal (30 s).
    pub lock_duration: Duration,
    /// How often locks are renewed (half the lock duration when None).
    pub lock_renew_time: Option<Duration>,
    /// How often the stalled-job sweep runs (30 s).
    pub stalled_interval: Duration,
    /// Stalls allowed before a job fails (1).
    pub max_stalled_count: u32,
    /// Leave the stalled sweep to other workers.
    pub skip_stalled_check: bool,
    /// How long to block waiting for jobs when none are delayed (5 s).
    pub drain_delay: Duration,
    /// Default for jobs that do not set `removeOnComplete`.
    pub remove_on_complete: Option<KeepJobs>,
    /// Default for jobs that do not set `removeOnFail`.
    pub remove_on_fail: Option<KeepJobs>,
    /// Rate limit for this queue.
    pub limiter: Option<RateLimit>,
    /// Keep per-minute completed/failed counts, this many minutes.
    pub metrics_max_data_points: Option<u32>,
    /// Fail an attempt that runs longer than this (a job's own `timeout`
    /// option wins).
    pub job_timeout: Option<Duration>,
    /// Custom backoff strategies.
    pub backoff_strategy: Option<BackoffStrategy>,
    /// Fail jobs started more than this many times.
    pub max_started_attempts: Option<i64>,
    /// Run each handler in its own tokio task, so CPU-heavy handlers use
    /// every core. Off by default: handlers are futures polled by the
    /// worker's own task (like Node's event loop), which is cheaper per job.
    pub spawn_handlers: bool,
    /// Also publish each completed job's return value on the Redis channel
    /// `job:{jobId}` as `{"type":"result","result":<returnvalue>}`, from the
    /// script that completes it (before the job's hash is written), so a
    /// gateway watching the job has the result without reading it back.
    /// Off by default: it costs Redis a `PUBLISH` per completed job.
    pub publish_results: bool,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 1,
            name: None,
            lock_duration: Duration::from_secs(30),
            lock_renew_time: None,
            stalled_interval: Duration::from_secs(30),
            max_stalled_count: 1,
            skip_stalled_check: false,
            drain_delay: Duration::from_secs(5),
            remove_on_complete: None,
            remove_on_fail: None,
            limiter: None,
            metrics_max_data_points: None,
            job_timeout: None,
            backoff_strategy: None,
            max_started_attempts: None,
            spawn_handlers: false,
            publish_results: false,
        }
    }
}

impl std::fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("concurrency", &self.concurrency)
            .field("name", &self.name)
            .field("lock_duration", &self.lock_duration)
            .field("stalled_interval", &self.stalled_interval)
            .field("max_stalled_count", &self.max_stalled_count)
            .finish_non_exhaustive()
    }
}

/// Jobs this worker holds: id -> lock token. Shared by the loop (which adds
/// and removes) and the lock renewer (which reads).
pub(crate) type Held = Arc<Mutex<HashMap<String, String>>>;

/// A running worker. Dropping it does not stop it: call [`Worker::close`].
pub struct Worker {
    queue: Queue,
    shutdown: watch::Sender<run_loop::Stop>,
    task: Option<JoinHandle<()>>,
    watchers: watch_events::Watchers,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("queue", &self.queue.name())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Starts a worker on `queue_name` with an async handler.
    ///
    /// A handler's `Err` is retried while the job has attempts left, except
    /// an unrecoverable [`JobError`] and a `serde_json::Error` turned into
    /// one by `?` (a payload that does not decode fails the job now). A
    /// panic or a timeout counts as a retryable failure. See [`JobError`].
    pub async fn start<F, Fut>(
        queue_name: &str,
        conn: &Connection,
        options: WorkerOptions,
        handler: F,
    ) -> Result<Self>
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, JobError>> + Send + 'static,
    {
        let processor: Processor = Arc::new(move |job| Box::pin(handler(job)));
        Self::start_with(queue_name, conn, options, processor).await
    }

    /// Starts a worker with a boxed [`Processor`].
    pub async fn start_with(
        queue_name: &str,
        conn: &Connection,
        options: WorkerOptions,
        processor: Processor,
    ) -> Result<Self> {
        if options.concurrency == 0 {
            return Err(Error::invalid("concurrency", "must be at least 1"));
        }
        if options.lock_duration < Duration::from_millis(10) {
            return Err(Error::invalid("lock_duration", "must be at least 10 ms"));
        }
        if let Some(name) = &options.name {
            if name.contains(char::is_whitespace) || name.is_empty() {
                return Err(Error::invalid(
                    "worker name",
                    "must be non-empty without spaces (it names a connection)",
                ));
            }
        }
        let queue = Queue::handle(queue_name, conn)?;
        let (shutdown, shutdown_rx) = watch::channel(run_loop::Stop::Running);
        let watchers = watch_events::Watchers::new();
        let runner = run_loop::Runner::new(
            queue.clone(),
            options,
            processor,
            shutdown_rx,
            watchers.clone(),
        )
        .await?;
        let task = tokio::spawn(runner.run());
        Ok(Worker {
            queue,
            shutdown,
            task: Some(task),
            watchers,
        })
    }

    /// What this worker does from now on: each recorded completion and
    /// failure, and each time it cannot reach Redis (Node's
    /// `worker.on('completed' | 'failed' | 'error')`). A receiver that
    /// falls more than 1024 events behind misses the oldest
    /// (`RecvError::Lagged`). Nothing is built while nobody listens.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<WorkerEvent> {
        self.watchers.subscribe()
    }

    /// Whether the worker's loop still runs: false once it has stopped
    /// after [`Worker::close`], or if it ended on its own (a panic in the
    /// loop, never a handler's).
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// The queue this worker serves.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Stops fetching, lets running jobs finish and records their results,
    /// then stops the timers and closes the worker's connections. Jobs a
    /// fetch still in flight brings in after the close began are handed
    /// back to `wait` at once (no attempt counted), not started.
    pub async fn close(mut self) {
        let _ = self.shutdown.send(run_loop::Stop::Draining);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Like [`Worker::close`], but jobs still running after `grace` are
    /// handed back to `wait` (no attempt counted) for any worker to run.
    pub async fn close_within(mut self, grace: Duration) {
        let _ = self.shutdown.send(run_loop::Stop::Draining);
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                run_loop::request_handback(&self.shutdown);
                let _ = task.await;
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.task.is_some() {
            let _ = self.shutdown.send(run_loop::Stop::Draining);
        }
    }
}
