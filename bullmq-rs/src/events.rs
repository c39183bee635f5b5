//! QueueEvents: the queue's events stream (`<prefix>:<queue>:events`), read
//! with `XREAD BLOCK` on a connection named `<prefix>:<base64(queue)>:qe`
//! and broadcast, typed, to every subscriber.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::connection::BlockingConnection;
use redis::streams::StreamReadReply;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::state::JobState;

/// Where reading starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// Only events written after `QueueEvents::start` returns.
    Now,
    /// Events after this stream id (`0` for the whole retained stream).
    After(String),
}

/// One entry of the events stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The stream entry id.
    pub id: String,
    /// What happened.
    pub kind: EventKind,
}

/// BullMQ's events, typed; anything else arrives as `Other`. Field names
/// are the stream's (`jobId` -> `job_id`); each variant's doc says what
/// happened.
#[allow(missing_docs)] // the fields are the stream fields, named as documented above
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// A job was stored.
    Added { job_id: String, name: String },
    /// A job is ready to run; `prev` is the state it came from.
    Waiting {
        job_id: String,
        prev: Option<String>,
    },
    /// A flow parent waits for its children.
    WaitingChildren { job_id: String },
    /// A job will be ready at `delay` (ms since the epoch).
    Delayed { job_id: String, delay: i64 },
    /// A worker took the job.
    Active {
        job_id: String,
        prev: Option<String>,
    },
    /// Progress reported.
    Progress { job_id: String, data: Value },
    /// Completed with this result.
    Completed { job_id: String, returnvalue: Value },
    /// Failed for good.
    Failed {
        job_id: String,
        failed_reason: String,
    },
    /// No attempts left.
    RetriesExhausted { job_id: String, attempts_made: i64 },
    /// Nothing left to run.
    Drained,
    /// Found stalled and moved back to wait.
    Stalled { job_id: String },
    /// Removed; `prev` is the state it was in.
    Removed {
        job_id: String,
        prev: Option<String>,
    },
    /// An add with an existing custom id.
    Duplicated { job_id: String },
    /// An add was deduplicated.
    Deduplicated {
        job_id: String,
        deduplication_id: String,
        deduplicated_job_id: String,
    },
    /// The queue was paused.
    Paused,
    /// The queue was resumed.
    Resumed,
    /// `count` jobs were cleaned.
    Cleaned { count: i64 },
    /// Any other event, with its fields.
    Other {
        name: String,
        fields: HashMap<String, String>,
    },
}

impl EventKind {
    /// The job the event is about, if any.
    pub fn job_id(&self) -> Option<&str> {
        use EventKind::*;
        match self {
            Added { job_id, .. }
            | Waiting { job_id, .. }
            | WaitingChildren { job_id }
            | Delayed { job_id, .. }
            | Active { job_id, .. }
            | Progress { job_id, .. }
            | Completed { job_id, .. }
            | Failed { job_id, .. }
            | RetriesExhausted { job_id, .. }
            | Stalled { job_id }
            | Removed { job_id, .. }
            | Duplicated { job_id }
            | Deduplicated { job_id, .. } => Some(job_id),
            Other { fields, .. } => fields.get("jobId").map(String::as_str),
            Drained | Paused | Resumed | Cleaned { .. } => None,
        }
    }

    /// The event's name as written in the stream.
    pub fn name(&self) -> &str {
        use EventKind::*;
        match self {
            Added { .. } => "added",
            Waiting { .. } => "waiting",
            WaitingChildren { .. } => "waiting-children",
            Delayed { .. } => "delayed",
            Active { .. } => "active",
            Progress { .. } => "progress",
            Completed { .. } => "completed",
            Failed { .. } => "failed",
            RetriesExhausted { .. } => "retries-exhausted",
            Drained => "drained",
            Stalled { .. } => "stalled",
            Removed { .. } => "removed",
            Duplicated { .. } => "duplicated",
            Deduplicated { .. } => "deduplicated",
            Paused => "paused",
            Resumed => "resumed",
            Cleaned { .. } => "cleaned",
            Other { name, .. } => name,
        }
    }

    /// Types the fields of one stream entry.
    pub fn parse(mut fields: HashMap<String, String>) -> Self {
        let mut take = |k: &str| fields.remove(k).unwrap_or_default();
        let name = take("event");
        let json = |s: String| serde_json::from_str(&s).unwrap_or(Value::String(s));
        match name.as_str() {
            "added" => EventKind::Added {
                job_id: take("jobId"),
                name: take("name"),
            },
            "waiting" => EventKind::Waiting {
                job_id: take("jobId"),
                prev: fields.remove("prev"),
            },
            "waiting-children" => EventKind::WaitingChildren {
                job_id: take("jobId"),
            },
            "delayed" => EventKind::Delayed {
                job_id: take("jobId"),
                delay: crate::job::parse_number(&take("delay")).unwrap_or(0),
            },
            "active" => EventKind::Active {
                job_id: take("jobId"),
                prev: fields.remove("prev"),
            },
            "progress" => EventKind::Progress {
                job_id: take("jobId"),
                data: json(take("data")),
            },
            "completed" => EventKind::Completed {
                job_id: take("jobId"),
                returnvalue: json(take("returnvalue")),
            },
            "failed" => EventKind::Failed {
                job_id: take("jobId"),
                failed_reason: take("failedReason"),
            },
            "retries-exhausted" => EventKind::RetriesExhausted {
                job_id: take("jobId"),
                attempts_made: crate::job::parse_number(&take("attemptsMade")).unwrap_or(0),
            },
            "drained" => EventKind::Drained,
            "stalled" => EventKind::Stalled {
                job_id: take("jobId"),
            },
            "removed" => EventKind::Removed {
                job_id: take("jobId"),
                prev: fields.remove("prev"),
            },
            "duplicated" => EventKind::Duplicated {
                job_id: take("jobId"),
            },
            "deduplicated" => EventKind::Deduplicated {
                job_id: take("jobId"),
                deduplication_id: take("deduplicationId"),
                deduplicated_job_id: take("deduplicatedJobId"),
            },
            "paused" => EventKind::Paused,
            "resumed" => EventKind::Resumed,
            "cleaned" => EventKind::Cleaned {
                count: crate::job::parse_number(&take("count")).unwrap_or(0),
            },
            _ => EventKind::Other { name, fields },
        }
    }
}

/// How a job ended, as `wait_until_finished` reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// The job's return value.
    Completed(Value),
    /// The job's failedReason.
    Failed(String),
}

/// A running reader of one queue's events. Subscribers each get every
/// event read after they subscribe; one that falls more than the buffer
/// behind is told how many it missed (`broadcast` semantics).
pub struct QueueEvents {
    queue: Queue,
    tx: broadcast::Sender<Arc<Event>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for QueueEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueEvents")
            .field("queue", &self.queue.name())
            .finish_non_exhaustive()
    }
}

/// Events buffered per subscriber before it counts as lagging.
const BUFFER: usize = 4096;
/// BullMQ's blocking read timeout.
const BLOCK_MS: usize = 10_000;

impl QueueEvents {
    /// Connects and starts reading. With [`StartAt::Now`] the current end of
    /// the stream is resolved before this returns, so no event written
    /// afterwards is missed.
    pub async fn start(queue_name: &str, conn: &Connection, start: StartAt) -> Result<Self> {
        let queue = Queue::handle(queue_name, conn)?;
        let key = queue.keys().events().to_string();
        let name = queue.keys().events_client_name();
        let mut con = conn.blocking(Some(&name)).await?;
        let last_id = match start {
            StartAt::After(id) => id,
            StartAt::Now => {
                let last: Vec<(String, HashMap<String, String>)> = redis::cmd("XREVRANGE")
                    .arg(&key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut con)
                    .await?;
                last.into_iter()
                    .next()
                    .map(|(id, _)| id)
                    .unwrap_or_else(|| "0-0".to_string())
            }
        };
        let (tx, _) = broadcast::channel(BUFFER);
        let task = tokio::spawn(read_loop(conn.clone(), name, key, last_id, con, tx.clone()));
        Ok(QueueEvents { queue, tx, task })
    }

    /// A new subscriber; it sees events read from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// The queue being read.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Waits until the job completes or fails for good (BullMQ's
    /// `job.waitUntilFinished`). Subscribes before reading the job's state,
    /// so a job that finishes in between is not missed.
    pub async fn wait_until_finished(&self, job_id: &str, timeout: Duration) -> Result<Finished> {
        let mut rx = self.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        if let Some(done) = self.finished_state(job_id).await? {
            return Ok(done);
        }
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) => return Err(Error::Timeout(timeout)),
                Ok(Ok(ev)) => match &ev.kind {
                    EventKind::Completed {
                        job_id: id,
                        returnvalue,
                    } if id == job_id => return Ok(Finished::Completed(returnvalue.clone())),
                    EventKind::Failed {
                        job_id: id,
                        failed_reason,
                    } if id == job_id => return Ok(Finished::Failed(failed_reason.clone())),
                    _ => {}
                },
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    if let Some(done) = self.finished_state(job_id).await? {
                        return Ok(done);
                    }
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return Err(Error::Closed),
            }
        }
    }

    async fn finished_state(&self, job_id: &str) -> Result<Option<Finished>> {
        let Some(job) = self.queue.get_job(job_id).await? else {
            return Err(Error::JobNotFound {
                queue: self.queue.name().to_string(),
                job_id: job_id.to_string(),
            });
        };
        if job.finished_on.is_none() {
            return Ok(None);
        }
        Ok(match self.queue.get_job_state(job_id).await? {
            JobState::Completed => {
                Some(Finished::Completed(job.returnvalue.unwrap_or(Value::Null)))
            }
            JobState::Failed => Some(Finished::Failed(job.failed_reason.unwrap_or_default())),
            _ => None,
        })
    }

    /// Stops reading and closes the connection.
    pub fn close(self) {
        self.task.abort();
    }
}

impl Drop for QueueEvents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_loop(
    conn: Connection,
    name: String,
    key: String,
    mut last_id: String,
    con: BlockingConnection,
    tx: broadcast::Sender<Arc<Event>>,
) {
    let mut con = Some(con);
    loop {
        let c = match con.as_mut() {
            Some(c) => c,
            None => match conn.blocking(Some(&name)).await {
                Ok(c) => con.insert(c),
                Err(e) => {
                    tracing::warn!(stream = %key, error = %e, "events: cannot reconnect; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            },
        };
        let reply: redis::RedisResult<Option<StreamReadReply>> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1000)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS")
            .arg(&key)
            .arg(&last_id)
            .query_async(c)
            .await;
        match reply {
            Ok(Some(reply)) => {
                for stream in reply.keys {
                    for entry in stream.ids {
                        last_id = entry.id.clone();
                        let fields: HashMap<String, String> = entry
                            .map
                            .into_iter()
                            .filter_map(|(k, v)| {
                                redis::from_redis_value::<String>(v).ok().map(|v| (k, v))
                            })
                            .collect();
                        let _ = tx.send(Arc::new(Event {
                            id: entry.id,
                            kind: EventKind::parse(fields),
                        }));
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(stream = %key, redis = conn.address(), error = %e, "events: read failed; reconnecting");
                con = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
