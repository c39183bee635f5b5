//! A running job's progress and log writes, best-effort: when Redis cannot
//! be reached the write is kept (the latest progress, log lines in order up
//! to [`MAX_KEPT_LOG_LINES`]) and sent with the next write, or when the
//! handler returns ([`JobWrites::settle`]). A Redis hiccup never fails the
//! job; a write Redis refuses (the job is gone, say) still does.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bullmq_wire::{Job, Queue};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Log lines kept while Redis is unreachable; older ones are dropped first.
pub(crate) const MAX_KEPT_LOG_LINES: usize = 1000;

/// The writes of one job; clones share the backlog.
#[derive(Debug, Clone)]
pub(crate) struct JobWrites {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    queue: Queue,
    job_id: String,
    keep_logs: Option<i64>,
    /// Progress is also published on `job:{jobId}` and the job's reply
    /// channel, if any (`publish_results`): Some(channel or "").
    publish: Option<String>,
    backlog: Mutex<Backlog>,
}

#[derive(Debug, Default)]
struct Backlog {
    progress: Option<Value>,
    logs: VecDeque<String>,
    dropped_logs: u64,
    /// A write failed and is kept; cleared once everything is written.
    behind: bool,
}

impl JobWrites {
    pub(crate) fn new(job: &Job) -> Self {
        JobWrites {
            inner: Arc::new(Inner {
                queue: job.queue().clone(),
                job_id: job.id.clone(),
                keep_logs: job.opts.keep_logs,
                publish: job.progress_publishing().map(str::to_string),
                backlog: Mutex::new(Backlog::default()),
            }),
        }
    }

    /// Sets the job's progress (replacing any progress not yet written).
    pub(crate) async fn progress(&self, progress: Value) -> bullmq_wire::Result<()> {
        let mut backlog = self.inner.backlog.lock().await;
        backlog.progress = Some(progress);
        self.flush(&mut backlog).await
    }

    /// Appends a line to the job's log, after any lines not yet written.
    pub(crate) async fn log(&self, line: &str) -> bullmq_wire::Result<()> {
        let mut backlog = self.inner.backlog.lock().await;
        if backlog.logs.len() >= MAX_KEPT_LOG_LINES {
            backlog.logs.pop_front();
            backlog.dropped_logs += 1;
        }
        backlog.logs.push_back(line.to_string());
        self.flush(&mut backlog).await
    }

    /// Retries what is kept until it is written or `within` has passed
    /// (then it is dropped with a warning). Called when the handler returns,
    /// before its result is written, so watchers see progress first.
    pub(crate) async fn settle(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let mut pause = Duration::from_millis(100);
        loop {
            let mut backlog = self.inner.backlog.lock().await;
            if !backlog.behind {
                return;
            }
            if let Err(e) = self.flush(&mut backlog).await {
                tracing::warn!(job_id = %self.inner.job_id, error = %e, "job progress/log write refused; dropped");
                return;
            }
            if !backlog.behind {
                return;
            }
            if Instant::now() + pause > deadline {
                tracing::warn!(
                    job_id = %self.inner.job_id,
                    log_lines = backlog.logs.len(),
                    progress = backlog.progress.is_some(),
                    "redis still unreachable; dropping the job's unwritten progress/log"
                );
                return;
            }
            drop(backlog);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Writes the backlog in order; a retryable failure keeps the rest and
    /// is not an error, any other failure is returned (and that write dropped).
    async fn flush(&self, backlog: &mut Backlog) -> bullmq_wire::Result<()> {
        let Inner {
            queue,
            job_id,
            keep_logs,
            publish,
            ..
        } = &*self.inner;
        while let Some(line) = backlog.logs.front() {
            match queue.add_log(job_id, line, *keep_logs).await {
                Ok(_) => {
                    backlog.logs.pop_front();
                }
                Err(e) if e.is_retryable() => {
                    self.fell_behind(backlog, &e);
                    return Ok(());
                }
                Err(e) => {
                    backlog.logs.pop_front();
                    return Err(e);
                }
            }
        }
        if let Some(progress) = backlog.progress.take() {
            match queue
                .set_progress(job_id, &progress, publish.as_deref())
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_retryable() => {
                    backlog.progress = Some(progress);
                    self.fell_behind(backlog, &e);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        if backlog.behind {
            backlog.behind = false;
            tracing::info!(
                job_id = %job_id,
                dropped_log_lines = backlog.dropped_logs,
                "redis is back; the job's kept progress/log are written"
            );
            backlog.dropped_logs = 0;
        }
        Ok(())
    }

    fn fell_behind(&self, backlog: &mut Backlog, e: &bullmq_wire::Error) {
        if !backlog.behind {
            backlog.behind = true;
            tracing::warn!(job_id = %self.inner.job_id, error = %e, "job progress/log write failed; kept and retried once redis is back");
        }
    }
}
