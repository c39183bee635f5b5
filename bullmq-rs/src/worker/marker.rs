//! Waiting for work: a task that owns the worker's blocking connection
//! (named so that `Queue.getWorkers()` lists this worker) and runs one
//! `BZPOPMIN <marker>` at a time when the loop asks for it.
//!
//! The loop's fetch goes out on the same connection right behind the wait
//! (a pipeline of two), so Redis runs it the moment the wait ends and both
//! answers come back together: an idle worker starts a new job one round
//! trip sooner than with a fetch sent after the marker's answer. On a
//! cluster connection the wait goes alone and the loop fetches after it.
//!
//! A blocking call cannot be taken back once sent. A worker that closes
//! while it waits has the wait ended from another connection (`CLIENT
//! UNBLOCK`), so that the fetch behind it runs now and its jobs, if any,
//! reach the loop instead of staying locked by a worker that is gone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionLike as _;
use redis::{RedisResult, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::connection::BlockingConnection;
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

/// A wait, and the fetch to run behind it.
struct Wait {
    timeout: Duration,
    fetch: Option<redis::Cmd>,
}

/// How a wait ended, and the fetch's packed reply when it ran behind it
/// (`None` when it was not sent, or its answer was lost with the
/// connection: the loop then fetches on its own).
pub(crate) struct Answer {
    pub(crate) woken: Woken,
    pub(crate) fetched: Option<RedisResult<Vec<u8>>>,
}

/// What the waiting task shares with the loop for `CLIENT UNBLOCK`.
#[derive(Default)]
struct Blocked {
    /// `CLIENT ID` of the blocking connection (0 = not known).
    client_id: AtomicU64,
    /// A wait was armed and its answer is not in yet.
    waiting: AtomicBool,
}

pub(crate) struct MarkerWaiter {
    requests: mpsc::Sender<Wait>,
    answers: mpsc::Receiver<Answer>,
    armed: bool,
    /// The armed wait carries a fetch.
    fetching: bool,
    /// `CLIENT UNBLOCK` was sent for the armed wait.
    cancelled: bool,
    blocked: Arc<Blocked>,
    /// The connection takes a fetch behind the wait (not a cluster one).
    pipelines: bool,
    queue: Queue,
    task: JoinHandle<()>,
}

impl MarkerWaiter {
    /// Opens the named blocking connection now, so the worker is visible
    /// from the start, and spawns the waiting task.
    pub(crate) async fn start(queue: Queue, client_name: String) -> crate::Result<Self> {
        let con = queue.connection().blocking(Some(&client_name)).await?;
        let pipelines = matches!(con, BlockingConnection::Server(_));
        let (requests, mut request_rx) = mpsc::channel::<Wait>(1);
        let (answer_tx, answers) = mpsc::channel(1);
        let marker_key = queue.keys().marker().to_string();
        let blocked = Arc::new(Blocked::default());
        let task = tokio::spawn({
            let queue = queue.clone();
            let blocked = blocked.clone();
            async move {
                let mut con: Option<BlockingConnection> = Some(con);
                let id = client_id(con.as_mut()).await;
                blocked.client_id.store(id, Ordering::Relaxed);
                while let Some(wait) = request_rx.recv().await {
                    let answer =
                        wait_once(&queue, &client_name, &marker_key, &mut con, &blocked, wait)
                            .await;
                    blocked.waiting.store(false, Ordering::Release);
                    if answer_tx.send(answer).await.is_err() {
                        break;
                    }
                }
            }
        });
        Ok(MarkerWaiter {
            requests,
            answers,
            armed: false,
            fetching: false,
            cancelled: false,
            blocked,
            pipelines,
            queue,
            task,
        })
    }

    /// Whether a fetch can go behind the wait (see `arm`).
    pub(crate) fn fetches_behind(&self) -> bool {
        self.pipelines
    }

    /// Makes sure a wait of at most `timeout` is under way, with `fetch`
    /// (an `EVALSHA`) right behind it when given and `fetches_behind`.
    /// Whether this call armed the wait: when it did not, `fetch` was not
    /// sent.
    pub(crate) fn arm(&mut self, timeout: Duration, fetch: Option<redis::Cmd>) -> bool {
        if self.armed {
            return false;
        }
        let fetch = fetch.filter(|_| self.pipelines);
        let fetching = fetch.is_some();
        self.blocked.waiting.store(true, Ordering::Release);
        if self.requests.try_send(Wait { timeout, fetch }).is_err() {
            self.blocked.waiting.store(false, Ordering::Release);
            return false;
        }
        self.armed = true;
        self.fetching = fetching;
        self.cancelled = false;
        true
    }

    /// The answer to the armed wait.
    pub(crate) async fn woken(&mut self) -> Answer {
        let answer = self.answers.recv().await.unwrap_or(Answer {
            woken: Woken::Failed,
            fetched: None,
        });
        self.armed = false;
        self.fetching = false;
        answer
    }

    pub(crate) fn is_armed(&self) -> bool {
        self.armed
    }

    /// The armed wait has a fetch behind it, whose jobs the loop must take.
    pub(crate) fn is_fetching(&self) -> bool {
        self.armed && self.fetching
    }

    /// Ends the armed wait now (the worker is closing), so that the fetch
    /// behind it runs and answers. Sent again every 50 ms until the answer
    /// is in, as a wait may reach Redis after the first try; without the
    /// right to `CLIENT UNBLOCK` the wait ends at its timeout instead.
    pub(crate) fn cancel(&mut self) {
        if !self.is_fetching() || self.cancelled {
            return;
        }
        self.cancelled = true;
        let queue = self.queue.clone();
        let blocked = self.blocked.clone();
        tokio::spawn(async move {
            let slot = crate::connection::slot::key_slot(queue.keys().meta().as_bytes());
            for _ in 0..200 {
                if !blocked.waiting.load(Ordering::Acquire) {
                    return;
                }
                let id = blocked.client_id.load(Ordering::Relaxed);
                if id == 0 {
                    // reconnecting: the wait is not in Redis yet
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                let mut unblock = redis::cmd("CLIENT");
                unblock.arg("UNBLOCK").arg(id);
                match queue.con().query_on_slot(unblock, slot).await {
                    Ok(Value::Int(1)) => return,
                    Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    Err(e) => {
                        tracing::debug!(queue = queue.name(), error = %e, "cannot end the worker's wait; it ends at its timeout");
                        return;
                    }
                }
            }
        });
    }
}

impl Drop for MarkerWaiter {
    fn drop(&mut self) {
        // Dropping the connection ends a BZPOPMIN still blocked in Redis.
        self.task.abort();
    }
}

/// Puts back a marker this worker popped but cannot use.
pub(crate) async fn restore(queue: Queue, member: String) {
    let res: redis::RedisResult<()> = redis::cmd("ZADD")
        .arg(queue.keys().marker())
        .arg(0)
        .arg(member)
        .query_async(&mut queue.con())
        .await;
    if let Err(e) = res {
        tracing::debug!(error = %e, "could not put the marker back");
    }
}

/// The connection's `CLIENT ID` (0 when it cannot be had, or on a cluster,
/// where no fetch goes behind the wait).
async fn client_id(con: Option<&mut BlockingConnection>) -> u64 {
    match con {
        Some(c @ BlockingConnection::Server(_)) => redis::cmd("CLIENT")
            .arg("ID")
            .query_async(c)
            .await
            .unwrap_or(0),
        _ => 0,
    }
}

async fn wait_once(
    queue: &Queue,
    client_name: &str,
    marker_key: &str,
    con: &mut Option<BlockingConnection>,
    blocked: &Blocked,
    wait: Wait,
) -> Answer {
    let failed = Answer {
        woken: Woken::Failed,
        fetched: None,
    };
    if con.is_none() {
        match queue.connection().blocking(Some(client_name)).await {
            Ok(c) => {
                let c = con.insert(c);
                blocked
                    .client_id
                    .store(client_id(Some(c)).await, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(queue = queue.name(), error = %e, "cannot reconnect the blocking connection");
                tokio::time::sleep(Duration::from_millis(500)).await;
                return failed;
            }
        }
    }
    let Some(c) = con.as_mut() else {
        return failed;
    };
    // Redis >= 6 takes fractional seconds; 1 ms is the shortest useful block.
    let secs = wait.timeout.as_secs_f64().max(0.001);
    let mut pipe = redis::pipe();
    pipe.cmd("BZPOPMIN")
        .arg(marker_key)
        .arg(format!("{secs:.3}"));
    let count = match wait.fetch {
        Some(fetch) => {
            pipe.add_command(fetch);
            2
        }
        None => 1,
    };
    let reply = c.req_packed_commands(&pipe, 0, count).await;
    let mut replies = match reply {
        Ok(replies) if replies.len() == count => replies.into_iter(),
        other => {
            let e = match other {
                Ok(replies) => format!("{} replies to {count} commands", replies.len()),
                Err(e) => e.to_string(),
            };
            tracing::warn!(queue = queue.name(), redis = queue.connection().address(), error = %e, "waiting for jobs failed; reconnecting");
            *con = None;
            blocked.client_id.store(0, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            return failed;
        }
    };
    let popped: RedisResult<Option<(String, String, String)>> =
        replies.next().map_or(Ok(None), read);
    let woken = match popped {
        Ok(Some((_, member, score))) => Woken::Marker(member, score.parse().unwrap_or(0.0)),
        Ok(None) => Woken::Timeout,
        Err(e) => {
            tracing::warn!(queue = queue.name(), error = %e, "waiting for jobs failed");
            Woken::Failed
        }
    };
    let fetched = replies.next().map(read::<Vec<u8>>);
    Answer { woken, fetched }
}

/// One reply of a pipeline, a server error kept as its own kind.
fn read<T: redis::FromRedisValue>(v: Value) -> RedisResult<T> {
    Ok(redis::from_redis_value(v.extract_error()?)?)
}
