//! What a worker tells whoever watches it ([`crate::Worker::events`]), as
//! Node's `worker.on('completed' | 'failed' | 'progress' | 'error')` does.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::job::ProgressHook;

use super::outcome::{Kind, Outcome};

/// Events kept for a slow watcher before it starts missing some.
const CAPACITY: usize = 1024;

/// One thing a worker did.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerEvent {
    /// A job's result was recorded.
    Completed {
        /// The job.
        job_id: String,
        /// What the handler returned.
        returnvalue: Value,
    },
    /// An attempt failed and was recorded.
    Failed {
        /// The job.
        job_id: String,
        /// The failure's message (the job's `failedReason`).
        reason: String,
        /// Attempts made, this one included.
        attempts_made: i64,
        /// Whether the job will run again (now or after its backoff).
        will_retry: bool,
    },
    /// A handler reported progress (`job.update_progress`), once Redis took it.
    Progress {
        /// The job.
        job_id: String,
        /// The progress reported.
        progress: Value,
    },
    /// The worker could not reach Redis; it keeps results and retries.
    Error {
        /// What went wrong.
        error: String,
    },
}

/// The sending side, owned by the worker's loop.
#[derive(Clone)]
pub(crate) struct Watchers {
    tx: broadcast::Sender<WorkerEvent>,
}

impl Watchers {
    pub(crate) fn new() -> Self {
        Watchers {
            tx: broadcast::channel(CAPACITY).0,
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<WorkerEvent> {
        self.tx.subscribe()
    }

    /// Reports the outcomes the script recorded (`recorded`, one flag per
    /// outcome); costs a counter read when nobody watches.
    pub(crate) fn settled(&self, batch: &[Outcome], recorded: &[bool]) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        for (o, _) in batch.iter().zip(recorded).filter(|(_, ok)| **ok) {
            let job_id = o.job_id.clone();
            let event = match &o.kind {
                Kind::Completed { returnvalue } => WorkerEvent::Completed {
                    job_id,
                    returnvalue: serde_json::from_str(returnvalue).unwrap_or(Value::Null),
                },
                Kind::Failed { reason } => WorkerEvent::Failed {
                    job_id,
                    reason: reason.clone(),
                    attempts_made: o.attempts_made,
                    will_retry: false,
                },
                Kind::Delayed { reason, .. } | Kind::Retry { reason, .. } => WorkerEvent::Failed {
                    job_id,
                    reason: reason.clone(),
                    attempts_made: o.attempts_made,
                    will_retry: true,
                },
                Kind::HandBack | Kind::WaitingChildren => continue,
            };
            let _ = self.tx.send(event);
        }
    }

    /// The hook a fetched job calls on progress (one per worker, shared by
    /// its jobs); costs a counter read when nobody watches.
    pub(crate) fn progress_hook(&self) -> ProgressHook {
        let tx = self.tx.clone();
        Arc::new(move |job_id: &str, progress: &Value| {
            if tx.receiver_count() > 0 {
                let _ = tx.send(WorkerEvent::Progress {
                    job_id: job_id.to_owned(),
                    progress: progress.clone(),
                });
            }
        })
    }

    pub(crate) fn error(&self, error: &crate::Error) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(WorkerEvent::Error {
                error: error.to_string(),
            });
        }
    }
}
