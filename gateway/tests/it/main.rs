//! The gateway's integration tests, one binary: real WebSocket clients
//! against gateways bound on 127.0.0.1:0, each test with its own
//! redis-server and, where jobs must run, a Rust worker serving `demo`.
//!
//! - `attacks`: slow readers (4001, the gateway's RSS bounded), writers
//!   that never read, connection and call floods, the JWT list, malformed
//!   frames and garbage floods (other clients still served), other users'
//!   job ids.
//! - `calls`: results, acks, progress, retries, failures, batches,
//!   fire-and-forget, idempotent resends, schemas.
//! - `deployments`: a Redis Cluster and a Sentinel set: calls before and
//!   after the queue's master is killed, one answer for a call in flight,
//!   re-attach after the failover, `/healthz` by queue, refusals of
//!   keyspace mode and untagged prefixes on a cluster.
//! - `errors`: every bad input and the error or close code it gets.
//! - `auth`: tokens at the upgrade (401 before upgrade), where tokens come
//!   from, algorithms, `rpc.auth` and expiry.
//! - `jobs`: `rpc.status`, `rpc.cancel`, `rpc.subscribe` (re-attach on a
//!   second gateway), `rpc.unsubscribe`, other users' jobs.
//! - `lifecycle`: heartbeats, shutdown, slow consumers, connection limits.
//! - `notifier`: what the notifier reads per call (the move to active
//!   deferred), and an end that is a job's second write.
//! - `interop`: unmodified Node and Python BullMQ workers behind the gateway.
//! - `ops`: `/healthz`, `/metrics`, TLS, custom publishers, the events
//!   fallback.
//! - `prd_examples`: the PRD's JavaScript and Python client examples, run
//!   as written with only the URL and token changed.
//! - `sdk`: the client SDKs of `clients/` (TypeScript in Node, Bun and
//!   headless Chromium over HTTPS/WSS; Python) against the gateway, failing
//!   over between two gateway processes, and their connection behaviour
//!   (token refresh, heartbeat, bounded queue, 4429 and the abuse cooldown).
//! - `settings`: the README's settings table is complete; boolean
//!   environment variables accept 1/0, yes/no, on/off.

mod support;

mod attacks;
mod auth;
mod calls;
mod deployments;
mod errors;
mod interop;
mod jobs;
mod lifecycle;
mod notifier;
mod ops;
mod prd_examples;
mod sdk;
mod settings;
