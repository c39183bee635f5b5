//! A queue handle: adding jobs, and (in the submodules) reading and
//! administering the queue and its jobs.

mod admin;
mod batcher;
mod getters;

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::keys::QueueKeys;
use crate::options::millis::to_ms;
use crate::options::JobOptions;
use crate::script;
use crate::time::now_ms;

pub use batcher::AddBatcher;
pub use getters::{Metrics, WorkerInfo};

/// The BullMQ release whose Redis layout this library writes; stored in
/// `meta.version` as `bullmq:<version>`, as a BullMQ `Queue` does.
pub const BULLMQ_VERSION: &str = "6.7.0";

/// A job to add: name, JSON data and options.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Job name.
    pub name: String,
    /// Job data, as JSON text (checked to be JSON).
    pub data: String,
    /// Options.
    pub opts: JobOptions,
}

impl NewJob {
    /// A job with JSON data.
    pub fn new(name: impl Into<String>, data: &Value, opts: JobOptions) -> Self {
        NewJob {
            name: name.into(),
            data: data.to_string(),
            opts,
        }
    }

    /// A job whose data is any serializable value (a struct, a map, a
    /// `serde_json::Value`), stored as its JSON.
    pub fn serialize<T: Serialize + ?Sized>(
        name: impl Into<String>,
        data: &T,
        opts: JobOptions,
    ) -> Result<Self> {
        let name = name.into();
        let data = serde_json::to_string(data).map_err(|e| {
            Error::invalid("job data", format!("data of job {name:?} is not JSON: {e}"))
        })?;
        Ok(NewJob { name, data, opts })
    }

    /// Checks the options, and that the data is JSON.
    pub fn validate(&self) -> Result<()> {
        self.opts.validate()?;
        if serde_json::from_str::<serde::de::IgnoredAny>(&self.data).is_err() {
            return Err(Error::invalid(
                "job data",
                format!("data of job {:?} is not JSON", self.name),
            ));
        }
        Ok(())
    }
}

/// A handle on one queue; clones share the connection.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    keys: QueueKeys,
    conn: Connection,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.inner.name)
            .field("prefix", &self.inner.conn.prefix())
            .finish()
    }
}

/// BullMQ forbids `:` in queue names (it would split keys).
pub fn validate_queue_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("queue name", "must not be empty"));
    }
    if name.contains(':') {
        return Err(Error::invalid(
            "queue name",
            format!("{name:?} contains ':'"),
        ));
    }
    Ok(())
}

impl Queue {
    /// Opens a queue and records `meta.version` and `opts.maxLenEvents`,
    /// as a BullMQ `Queue` does when constructed.
    pub async fn new(name: &str, conn: &Connection) -> Result<Self> {
        let queue = Self::handle(name, conn)?;
        let mut con = conn.manager();
        let _: () = redis::cmd("HSET")
            .arg(queue.inner.keys.meta())
            .arg("opts.maxLenEvents")
            .arg(10_000)
            .arg("version")
            .arg(format!("bullmq:{BULLMQ_VERSION}"))
            .query_async(&mut con)
            .await?;
        Ok(queue)
    }

    /// A handle without touching Redis (workers and events readers use this:
    /// like BullMQ's, they do not write queue metadata). On a Redis Cluster,
    /// a queue whose keys would not share one slot (no hash tag in the
    /// prefix or the name) is refused here, before anything is written.
    pub fn handle(name: &str, conn: &Connection) -> Result<Self> {
        validate_queue_name(name)?;
        if conn.is_cluster() {
            crate::connection::slot::queue_slot(conn.prefix(), name)?;
        }
        let keys = QueueKeys::new(conn.prefix(), name);
        Ok(Queue {
            inner: Arc::new(Inner {
                name: name.to_string(),
                keys,
                conn: conn.clone(),
            }),
        })
    }

    /// The queue name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `<prefix>:<name>`, how flows refer to a queue.
    pub fn qualified_name(&self) -> String {
        self.inner.keys.qualified_name()
    }

    /// The connection this queue uses.
    pub fn connection(&self) -> &Connection {
        &self.inner.conn
    }

    pub(crate) fn keys(&self) -> &QueueKeys {
        &self.inner.keys
    }

    pub(crate) fn con(&self) -> crate::connection::CommandConnection {
        self.inner.conn.manager()
    }

    /// Adds one job whose data is any serializable value (a
    /// `serde_json::Value` or your own `Serialize` type); returns its id
    /// (for an existing custom id, that id), not a `Job` as Node's `add`.
    pub async fn add<T: Serialize + ?Sized>(
        &self,
        name: &str,
        data: &T,
        opts: JobOptions,
    ) -> Result<String> {
        let mut ids = self
            .add_bulk(vec![NewJob::serialize(name, data, opts)?])
            .await?;
        ids.pop()
            .ok_or_else(|| Error::protocol("addJobs", "no id returned"))
    }

    /// Adds a job whose data is JSON text, rejecting text that is not JSON.
    pub async fn add_json(&self, name: &str, data: &str, opts: JobOptions) -> Result<String> {
        let mut ids = self
            .add_bulk(vec![NewJob {
                name: name.to_string(),
                data: data.to_string(),
                opts,
            }])
            .await?;
        ids.pop()
            .ok_or_else(|| Error::protocol("addJobs", "no id returned"))
    }

    /// Adds many jobs in one round trip (one script call); returns their ids
    /// in order. Every job is validated first: one bad job rejects the batch
    /// and nothing is written.
    pub async fn add_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<String>> {
        for job in &jobs {
            job.validate()?;
        }
        self.add_checked(jobs).await
    }

    /// `add_bulk` for jobs already validated.
    pub(crate) async fn add_checked(&self, jobs: Vec<NewJob>) -> Result<Vec<String>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let keys = self.keys();
        let mut call = script::ADD_JOBS
            .call()
            .keys(keys.core())
            .key(keys.id())
            .arg(keys.base())
            .arg(jobs.len());
        for job in &jobs {
            let o = &job.opts;
            call.push_arg(o.job_id.as_deref().unwrap_or(""));
            call.push_arg(&job.name);
            call.push_arg(&job.data);
            call.push_arg(o.to_stored_string());
            call.push_arg(o.timestamp.unwrap_or(now));
            call.push_arg(o.delay.map(to_ms).unwrap_or(0));
            call.push_arg(o.priority.unwrap_or(0));
            call.push_arg(if o.lifo { "1" } else { "" });
            call.push_arg(
                o.deduplication
                    .as_ref()
                    .map(|d| d.to_json().to_string())
                    .unwrap_or_default(),
            );
            call.push_arg(
                o.parent
                    .as_ref()
                    .map(|p| p.hash_json(o.on_failure).to_string())
                    .unwrap_or_default(),
            );
        }
        let reply = match self.inner.conn.acked_adds() {
            None => call.invoke::<redis::Value, _>(&mut self.con()).await?,
            Some((mut con, acks)) => call.invoke_replicated(&mut con, acks).await?,
        };
        match reply {
            redis::Value::Int(code) => {
                // -5: a parent does not exist
                let parent = jobs
                    .iter()
                    .find_map(|j| j.opts.parent.as_ref())
                    .map(|p| p.id.as_str())
                    .unwrap_or_default();
                crate::error::check(code, "addJobs", parent)?;
                Err(Error::protocol(
                    "addJobs",
                    format!("status {code} instead of job ids"),
                ))
            }
            redis::Value::Array(replies) => replies
                .into_iter()
                .zip(&jobs)
                .map(|(reply, job)| match reply {
                    // -7: the job exists and another parent holds it
                    redis::Value::Int(code) => {
                        crate::error::check(
                            code,
                            "addJobs",
                            job.opts.job_id.as_deref().unwrap_or_default(),
                        )?;
                        Err(Error::protocol(
                            "addJobs",
                            format!("status {code} instead of a job id"),
                        ))
                    }
                    id => redis::from_redis_value(id)
                        .map_err(|e| Error::protocol("addJobs", e.to_string())),
                })
                .collect(),
            other => Err(Error::protocol(
                "addJobs",
                format!("unexpected reply {other:?}"),
            )),
        }
    }
}
