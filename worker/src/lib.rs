//! The worker runtime: register async handlers for `service.method`, and
//! run them on BullMQ queues — queue `service`, job name `method`, params as
//! the job's data, the handler's result as its return value — beside BullMQ
//! workers of any language.
//!
//! # Layout
//! - [`Registry`]: `service.method` -> handler, typed or raw JSON.
//! - [`Call`]: what a handler gets: params, progress, job log, cancellation;
//!   progress and log writes are best-effort, kept while Redis is away
//!   (`job_writes`).
//! - [`Runtime`]: one `bullmq_wire::Worker` per service, graceful shutdown;
//!   [`Health`] reports its state to a host process (running, stopped, the
//!   last error).
//! - [`services`]: the demo services (`demo`, `data`, `analysis`).

mod call;
mod health;
mod job_writes;
mod registry;
mod runtime;
pub mod services;

pub use call::Call;
pub use health::{Health, HealthReport, LastError, RunState};
pub use registry::{Handler, Registry, RegistryError};
pub use runtime::{Runtime, RuntimeOptions};
