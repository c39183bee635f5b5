//! The fallback source when keyspace notifications cannot be enabled: one
//! `QueueEvents` reader per served queue, forwarding the ids of jobs that
//! changed to the hub (which then reads them like on a keyspace message).

use bullmq_wire::{JobSignal, QueueEvents, StartAt};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::{NotifierOptions, NotifyError};

/// What a reader forwards.
#[derive(Debug)]
pub(crate) enum FeedItem {
    /// A job of `queue` changed; `removed` when it was removed.
    Changed {
        queue: String,
        job_id: String,
        removed: bool,
    },
    /// The reader fell behind: every watched job of `queue` must be re-read.
    Lagged { queue: String },
}

/// The readers and their merged output; dropping it stops them.
pub(crate) struct Feed {
    pub(crate) rx: mpsc::Receiver<FeedItem>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts one reader per queue, from the current end of each stream.
pub(crate) async fn start(options: &NotifierOptions) -> Result<Feed, NotifyError> {
    let conn = &options.connection;
    let (tx, rx) = mpsc::channel(4096);
    let mut tasks = Vec::new();
    for queue in &options.queues {
        let events = QueueEvents::start(queue, conn, StartAt::Now)
            .await
            .map_err(|e| NotifyError::Redis(e.to_string()))?;
        tasks.push(tokio::spawn(forward(queue.clone(), events, tx.clone())));
    }
    Ok(Feed { rx, tasks })
}

async fn forward(queue: String, events: QueueEvents, tx: mpsc::Sender<FeedItem>) {
    let mut rx = events.subscribe();
    loop {
        let item = match rx.recv().await {
            Ok(ev) => match JobSignal::from_event(&ev.kind) {
                Some((id, signal)) => FeedItem::Changed {
                    queue: queue.clone(),
                    job_id: id.to_string(),
                    removed: signal == JobSignal::Removed,
                },
                None => continue,
            },
            Err(broadcast::error::RecvError::Lagged(_)) => FeedItem::Lagged {
                queue: queue.clone(),
            },
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if tx.send(item).await.is_err() {
            return;
        }
    }
}
