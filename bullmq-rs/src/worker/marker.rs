//! Waiting for work: a task that owns the worker's blocking connection
//! (named so that `Queue.getWorkers()` lists this worker) and runs one
//! `BZPOPMIN <marker>` at a time when the loop asks for it.
//!
//! A blocking call cannot be taken back once sent, so the loop never cancels
//! it: it asks at most once and takes the answer whenever it comes.

use std::time::Duration;

use crate::connection::BlockingConnection;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::queue::Queue;

/// What one wait ended with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Woken {
    /// A marker was popped: member and score (ms; 0 for "ready now").
    Marker(String, f64),
    /// The timeout passed.
    Timeout,
    /// Redis failed; the loop should try a fetch, which reports the error.
    Failed,
}

pub(crate) struct MarkerWaiter {
    requests: mpsc::Sender<Duration>,
    answers: mpsc::Receiver<Woken>,
    armed: bool,
    task: JoinHandle<()>,
}

impl MarkerWaiter {
    /// Opens the named blocking connection now, so the worker is visible
    /// from the start, and spawns the waiting task.
    pub(crate) async fn start(queue: Queue, client_name: String) -> crate::Result<Self> {
        let con = queue.connection().blocking(Some(&client_name)).await?;
        let (requests, mut request_rx) = mpsc::channel::<Duration>(1);
        let (answer_tx, answers) = mpsc::channel(1);
        let marker_key = queue.keys().marker().to_string();
        let task = tokio::spawn(async move {
            let mut con: Option<BlockingConnection> = Some(con);
            while let Some(timeout) = request_rx.recv().await {
                let woken = wait_once(&queue, &client_name, &marker_key, &mut con, timeout).await;
                if answer_tx.send(woken).await.is_err() {
                    break;
                }
            }
        });
        Ok(MarkerWaiter {
            requests,
            answers,
            armed: false,
            task,
        })
    }

    /// Makes sure a wait of at most `timeout` is under way.
    pub(crate) fn arm(&mut self, timeout: Duration) {
        if !self.armed && self.requests.try_send(timeout).is_ok() {
            self.armed = true;
        }
    }

    /// The answer to the armed wait.
    pub(crate) async fn woken(&mut self) -> Woken {
        let woken = self.answers.recv().await.unwrap_or(Woken::Failed);
        self.armed = false;
        woken
    }

    pub(crate) fn is_armed(&self) -> bool {
        self.armed
    }
}

impl Drop for MarkerWaiter {
    fn drop(&mut self) {
        // Dropping the connection ends a BZPOPMIN still blocked in Redis.
        self.task.abort();
    }
}

async fn wait_once(
    queue: &Queue,
    client_name: &str,
    marker_key: &str,
    con: &mut Option<BlockingConnection>,
    timeout: Duration,
) -> Woken {
    if con.is_none() {
        match queue.connection().blocking(Some(client_name)).await {
            Ok(c) => *con = Some(c),
            Err(e) => {
                tracing::warn!(queue = queue.name(), error = %e, "cannot reconnect the blocking connection");
                tokio::time::sleep(Duration::from_millis(500)).await;
                return Woken::Failed;
            }
        }
    }
    let Some(c) = con.as_mut() else {
        return Woken::Failed;
    };
    // Redis >= 6 takes fractional seconds; 1 ms is the shortest useful block.
    let secs = timeout.as_secs_f64().max(0.001);
    let reply: redis::RedisResult<Option<(String, String, String)>> = redis::cmd("BZPOPMIN")
        .arg(marker_key)
        .arg(format!("{secs:.3}"))
        .query_async(c)
        .await;
    match reply {
        Ok(Some((_, member, score))) => Woken::Marker(member, score.parse().unwrap_or(0.0)),
        Ok(None) => Woken::Timeout,
        Err(e) => {
            tracing::warn!(queue = queue.name(), redis = queue.connection().address(), error = %e, "waiting for jobs failed; reconnecting");
            *con = None;
            tokio::time::sleep(Duration::from_millis(200)).await;
            Woken::Failed
        }
    }
}
