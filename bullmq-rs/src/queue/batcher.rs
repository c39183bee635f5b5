//! Coalescing adds: many tasks each add one job, and the jobs that arrive
//! while a script call is in flight go to Redis together in the next one.
//!
//! A server that turns requests into jobs (the gateway) adds one job per
//! request from many tasks at once. Each `Queue::add` is one `addJobs`
//! call, and Redis spends about as long receiving and dispatching a call
//! as running it, and reads the queue's metadata and sets the marker once
//! per call. An [`AddBatcher`] sends whatever has queued up as one call,
//! with no timer: a lone add goes out at once, and under load each call
//! carries the adds that arrived during the previous one.

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::{NewJob, Queue};
use crate::error::{Error, Result};
use crate::options::JobOptions;

/// Jobs in one script call, at most.
const MAX_BATCH: usize = 200;
/// Script calls in flight at once; later adds wait and join one call.
const MAX_CALLS: usize = 2;
/// Adds waiting for a call before `add` itself waits.
const QUEUE_DEPTH: usize = 4096;

struct Pending {
    job: NewJob,
    reply: oneshot::Sender<Result<String>>,
}

/// Adds jobs to one queue, batching concurrent adds into shared
/// `addJobs` calls. Cheap to clone; the background task that sends the
/// calls ends when the last clone is dropped. Create it inside a tokio
/// runtime.
///
/// Each job is validated on its own before it joins a batch, so a bad job
/// gets its own error and never fails the others; a Redis failure fails
/// every add of that call (nothing of it was written).
#[derive(Clone)]
pub struct AddBatcher {
    tx: mpsc::Sender<Pending>,
    queue: Queue,
}

impl std::fmt::Debug for AddBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddBatcher")
            .field("queue", &self.queue.name())
            .finish()
    }
}

impl AddBatcher {
    /// Starts the background task for `queue`.
    pub fn new(queue: Queue) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(send_batches(queue.clone(), rx));
        AddBatcher { tx, queue }
    }

    /// The queue the jobs go to.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Adds one job, as [`Queue::add`] does; returns its id (for an existing
    /// custom id, that id). The data is serialized now; the job is queued
    /// when the future is first polled.
    pub fn add<T: serde::Serialize + ?Sized>(
        &self,
        name: &str,
        data: &T,
        opts: JobOptions,
    ) -> impl std::future::Future<Output = Result<String>> + Send + '_ {
        // what serde_json wrote is JSON: only the options need a check
        self.enqueue(NewJob::serialize(name, data, opts), false)
    }

    /// Adds one prepared job.
    pub fn add_job(
        &self,
        job: NewJob,
    ) -> impl std::future::Future<Output = Result<String>> + Send + '_ {
        self.enqueue(Ok(job), true)
    }

    /// Queues the job without holding it across an await: a gateway keeps
    /// one such future per call in flight, and a job (~450 bytes) held
    /// beside the channel's send future made it ~2 KiB, copied on every
    /// move. Only when the queue is full does the job wait, boxed.
    /// `check_data`: read the data through to check it is JSON (a job
    /// made by hand); a serialized one is.
    async fn enqueue(&self, job: Result<NewJob>, check_data: bool) -> Result<String> {
        let (reply, answer) = oneshot::channel();
        // Decided in a block that ends before any await, so that neither
        // the job nor the error holding it stays in this future's state.
        let full = {
            let job = job?;
            if check_data {
                job.validate()?;
            } else {
                job.opts.validate()?;
            }
            match self.tx.try_send(Pending { job, reply }) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(pending)) => Some(Box::new(pending)),
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Error::Closed),
            }
        };
        if let Some(pending) = full {
            Box::pin(self.tx.send(*pending))
                .await
                .map_err(|_| Error::Closed)?;
        }
        answer.await.map_err(|_| Error::Closed)?
    }
}

/// The background task: takes what is queued (up to `MAX_BATCH`) whenever
/// fewer than `MAX_CALLS` calls are in flight.
async fn send_batches(queue: Queue, mut rx: mpsc::Receiver<Pending>) {
    let mut calls = FuturesUnordered::new();
    let mut open = true;
    loop {
        if open && calls.len() < MAX_CALLS {
            tokio::select! {
                Some(()) = calls.next(), if !calls.is_empty() => {}
                first = rx.recv() => match first {
                    Some(first) => {
                        let mut batch = vec![first];
                        while batch.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(next) => batch.push(next),
                                Err(_) => break,
                            }
                        }
                        calls.push(send(queue.clone(), batch));
                    }
                    None => open = false,
                },
            }
        } else if calls.next().await.is_none() {
            // closed, and nothing left in flight
            return;
        }
    }
}

/// One `addJobs` call for `batch`, and each add's answer.
async fn send(queue: Queue, batch: Vec<Pending>) {
    let (jobs, replies): (Vec<NewJob>, Vec<oneshot::Sender<Result<String>>>) =
        batch.into_iter().map(|p| (p.job, p.reply)).unzip();
    let expected = jobs.len();
    match queue.add_checked(jobs).await {
        Ok(ids) if ids.len() == expected => {
            for (id, reply) in ids.into_iter().zip(replies) {
                let _ = reply.send(Ok(id));
            }
        }
        Ok(ids) => {
            let e = Error::protocol("addJobs", format!("{} ids for {expected} jobs", ids.len()));
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
