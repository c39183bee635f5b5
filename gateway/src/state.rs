//! What every session shares: configuration, the token verifier, queue
//! handles, the notifier, limits, metrics and the shutdown signal.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bullmq_wire::{AddBatcher, Connection};
use tokio::sync::watch;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::limits::{ConnectionSlots, Limiter};
use crate::metrics::Metrics;
use crate::notifier::{Notifier, SessionId};
use crate::user_connections::UserConnections;
use crate::FastMap;

/// Shared by all sessions of one gateway.
#[derive(Debug)]
pub struct Shared {
    /// The validated configuration.
    pub config: Config,
    /// Verifies tokens at upgrade and on `rpc.auth`.
    pub auth: Authenticator,
    /// One handle per configured service, opened at startup; concurrent
    /// calls' jobs go to Redis together (see `AddBatcher`).
    pub queues: FastMap<String, AddBatcher>,
    /// Watches jobs and pushes their updates to sessions.
    pub notifier: Notifier,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Token buckets per user (`sub`).
    pub user_limits: Limiter<String>,
    /// Token buckets per client IP.
    pub ip_limits: Limiter<IpAddr>,
    /// The connection count against `max_connections`.
    pub slots: Arc<ConnectionSlots>,
    /// Each user's connections against `max_connections_per_user`.
    pub user_connections: Arc<UserConnections>,
    /// Becomes `true` when the gateway shuts down; sessions then close
    /// with 1012.
    pub shutdown: watch::Receiver<bool>,
    /// The multiplexed connection every queue call uses; `/healthz` probes
    /// it, so it tells what the calls see.
    pub conn: Connection,
    /// What `/healthz` reports of a worker running in this process
    /// (`--dev`, `--with-worker`), once one is attached.
    pub worker: std::sync::OnceLock<WorkerProbe>,
    next_session: AtomicU64,
}

/// Reads the state of a worker running in the gateway's process, as the
/// JSON object `/healthz` shows under `worker`.
pub struct WorkerProbe(pub Box<dyn Fn() -> serde_json::Value + Send + Sync>);

impl WorkerProbe {
    /// The state now.
    pub fn read(&self) -> serde_json::Value {
        (self.0)()
    }
}

impl std::fmt::Debug for WorkerProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerProbe")
    }
}

impl Shared {
    /// Assembles the shared state.
    #[allow(clippy::too_many_arguments)] // one constructor call in `run`, each part named at the call site
    pub fn new(
        config: Config,
        auth: Authenticator,
        queues: FastMap<String, AddBatcher>,
        notifier: Notifier,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
        conn: Connection,
    ) -> Self {
        Shared {
            user_limits: Limiter::new(config.limits.user_rate),
            ip_limits: Limiter::new(config.limits.ip_rate),
            slots: ConnectionSlots::new(config.limits.max_connections),
            user_connections: UserConnections::new(
                config.limits.max_connections_per_user,
                config.limits.abuse_cooldown,
            ),
            config,
            auth,
            queues,
            notifier,
            metrics,
            shutdown,
            conn,
            worker: std::sync::OnceLock::new(),
            next_session: AtomicU64::new(1),
        }
    }

    /// A fresh session id.
    pub fn next_session_id(&self) -> SessionId {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// True once shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}
