//! BullMQ 6 wire-compatible queues for Rust.
//!
//! Rust producers and workers share queues with unmodified Node (`bullmq`)
//! and Python (`bullmq`) clients: the same Redis keys, key types, scores,
//! job-hash fields, `opts` JSON, events, markers, locks and worker names,
//! written by our own Lua scripts (`lua/` at the workspace root).
//!
//! # Layout
//! - [`Connection`]: one multiplexed, self-reconnecting Redis connection per
//!   process, plus dedicated blocking connections for workers and events.
//! - [`Queue`]: adding jobs (one script call for a whole batch), getters,
//!   administration (pause, drain, clean, obliterate, bulk retry).
//! - [`Job`]: a job read from its hash, with progress, logs, data, retry,
//!   promote, delay and priority changes and removal.
//! - [`Worker`]: runs a handler with concurrency N; settles finished jobs
//!   and fetches new ones in one script call, renews all locks in one call
//!   per interval, and runs BullMQ's stalled-job sweep.
//! - [`QueueEvents`]: the typed events stream, broadcast to subscribers.
//! - Watching one job from outside its queue ([`JobSnapshot`], [`JobKey`],
//!   [`JobSignal`]): what to read of it and what a keyspace notification
//!   or a stream event about it means, without reading its data.
//! - [`FlowProducer`]: a parent and its children, over any queues, in one
//!   script call; handlers can add children to their own job too.
//! - Job schedulers ([`Queue::upsert_job_scheduler`], [`Repeat`]): created
//!   from Rust or anywhere else, and kept running by Rust workers, which add
//!   each next iteration as BullMQ workers do.
//!
//! ```no_run
//! # async fn demo() -> bullmq_wire::Result<()> {
//! use bullmq_wire::{Connection, JobOptions, Queue, Worker, WorkerOptions};
//! let conn = Connection::open("redis://127.0.0.1:6379").await?;
//! let queue = Queue::new("emails", &conn).await?;
//! queue.add("send", &serde_json::json!({"to": "a@example.com"}), JobOptions::default()).await?;
//! let worker = Worker::start("emails", &conn, WorkerOptions::default(), |job| async move {
//!     Ok(serde_json::json!({"sent": job.data["to"]}))
//! })
//! .await?;
//! worker.close().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod connection;
mod error;
mod events;
mod flow;
mod job;
mod json_text;
mod keys;
mod options;
mod queue;
mod scheduler;
mod script;
mod state;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
mod watch;
mod worker;

pub use connection::{CommandConnection, Connection, RedisOptions, ReplicaAcks, DEFAULT_PREFIX};
pub use error::{Error, Result, ScriptCode};
pub use events::{Event, EventKind, Finished, QueueEvents, StartAt};
pub use flow::{FlowJob, FlowNode, FlowProducer};
pub use job::{
    DataError, Dependencies, DependenciesPage, DependencyCounts, DependencyPages, Job, Page,
    PageRequest,
};
#[cfg(feature = "testing")]
pub use job::{JobBuilder, Recorded};
pub use json_text::JsonText;
pub use keys::{job_key, JobKey};
pub use options::{
    validate_job_id, Backoff, Deduplication, JobOptions, KeepJobs, ParentOnFailure, ParentRef,
    MAX_PRIORITY,
};
pub use queue::{
    validate_queue_name, AddBatcher, Metrics, NewJob, Queue, WorkerInfo, BULLMQ_VERSION,
};
pub use scheduler::{next_cron_millis, JobScheduler, JobTemplate, Repeat};
pub use state::JobState;
pub use watch::{keyspace_flags_for_watching, JobSignal, JobSnapshot, JobUpdate};
pub use worker::{
    BackoffStrategy, JobError, Processor, RateLimit, Worker, WorkerEvent, WorkerOptions,
};
