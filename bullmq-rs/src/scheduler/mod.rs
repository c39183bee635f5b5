//! Job schedulers (BullMQ's repeatable jobs): the rule and template types
//! (`rule.rs`), creating one (`upsert.rs`), reading and removing one
//! (`stored.rs`), cron times (`cron.rs`), and the worker side (`next.rs`):
//! when a worker takes a job a scheduler produced (`rjk` set), it adds the
//! scheduler's next iteration before running the handler, as a BullMQ 6
//! worker does. Without this a scheduler would stop after the first
//! iteration a Rust worker took.
//!
//! The next time of a cron `pattern` is computed here (5 or 6 fields,
//! seconds optional, in the scheduler's `tz` or else the process's local
//! zone, as Node's `cron-parser` does); for `every` the script computes it
//! from the scheduler's current slot and offset. The script adds nothing
//! unless the taken job is still the scheduler's current iteration, so
//! workers of any language racing on one scheduler add it once.

mod cron;
mod next;
mod rule;
mod stored;
mod upsert;

pub use cron::next_cron_millis;
pub(crate) use next::add_next_iteration;
pub use rule::{JobScheduler, JobTemplate, Repeat};
