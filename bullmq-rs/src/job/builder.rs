//! Jobs for unit tests of handlers (feature `testing`): a [`Job`] built in
//! memory, on a queue whose connection never reaches Redis. Its progress
//! and log lines are recorded in a [`Recorded`] the test reads back; the
//! other operations on it fail with a connection error, as they would with
//! Redis away.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::{Job, Recorded};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::options::JobOptions;
use crate::queue::Queue;

/// Builds a [`Job`] without Redis, for a handler's unit test:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> bullmq_wire::Result<()> {
/// use bullmq_wire::Job;
/// use serde_json::json;
///
/// let (mut job, recorded) = Job::builder("send", &json!({"to": "a@b.c"}))
///     .id("42")
///     .attempts_made(1)
///     .build()?;
/// job.update_progress(json!(50)).await?;
/// job.log("sent").await?;
/// assert_eq!(job.data["to"], "a@b.c");
/// assert_eq!(recorded.progress(), vec![json!(50)]);
/// assert_eq!(recorded.logs(), vec!["sent".to_string()]);
/// // what needs Redis fails at once, as with Redis away
/// assert!(job.update_data(json!({})).await.is_err());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct JobBuilder {
    queue: String,
    id: String,
    name: String,
    data: Result<Value>,
    opts: JobOptions,
    attempts_made: i64,
}

impl Job {
    /// A job for tests, built in memory (feature `testing`); see
    /// [`JobBuilder`]. Must be built inside a Tokio runtime.
    pub fn builder<T: Serialize + ?Sized>(name: impl Into<String>, data: &T) -> JobBuilder {
        JobBuilder {
            queue: "test".into(),
            id: "1".into(),
            name: name.into(),
            data: serde_json::to_value(data)
                .map_err(|e| Error::invalid("data", format!("does not serialize: {e}"))),
            opts: JobOptions::default(),
            attempts_made: 0,
        }
    }
}

impl JobBuilder {
    /// The job id (default `1`).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// The queue's name (default `test`).
    pub fn queue(mut self, name: impl Into<String>) -> Self {
        self.queue = name.into();
        self
    }

    /// The job's options.
    pub fn opts(mut self, opts: JobOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Attempts already finished, as a retried job would have.
    pub fn attempts_made(mut self, n: i64) -> Self {
        self.attempts_made = n;
        self
    }

    /// The job and what its handler will report. Fails when the data does
    /// not serialize or the queue name is not a valid one.
    pub fn build(self) -> Result<(Job, Arc<Recorded>)> {
        let data = self.data?;
        let conn = Connection::detached()?;
        let queue = Queue::handle(&self.queue, &conn)?;
        let recorded = Arc::new(Recorded::default());
        let mut job = Job::from_fields(queue, self.id, std::iter::empty::<(&str, String)>());
        job.name = self.name;
        job.data = data;
        job.raw_opts = self.opts.to_stored_json();
        job.opts = self.opts;
        job.attempts_made = self.attempts_made;
        job.attempts_started = self.attempts_made + 1;
        job.delay = Duration::ZERO;
        job.recorded = Some(recorded.clone());
        Ok((job, recorded))
    }
}
