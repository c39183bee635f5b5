//! The library's integration tests: one binary, one module per area, each
//! test on its own redis-server (see `support`).

mod support;

mod admin;
mod connection;
mod events;
mod fidelity;
mod idle;
mod queue;
mod retry_wake;
mod stalled;
mod watch;
mod worker;
