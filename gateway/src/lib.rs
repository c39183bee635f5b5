//! A JSON-RPC 2.0 over WebSocket gateway for BullMQ: each `service.method`
//! call becomes a job named `method` on the BullMQ queue `service`, and the
//! job's progress and end are pushed back to every socket that watches it,
//! whoever runs the job (Rust, Node or Python BullMQ workers).
//!
//! # Layout
//! - [`protocol`]: the wire contract: requests, batches, responses,
//!   notifications, the error code table and the close codes.
//! - [`auth`]: JWT verification and where tokens come from.
//! - [`upgrade`] and [`server`]: the accept loop (TCP, TLS, HTTP/1.1) and
//!   the WebSocket handshake, with 401 before any upgrade; [`http`] adds
//!   `/healthz` and `/metrics`.
//! - [`session`]: one task per socket, selecting over client frames, job
//!   updates, heartbeats, token expiry and shutdown.
//! - [`dispatch`] routes a method name to one of the [`handlers`].
//! - [`notifier`]: watches the jobs sockets wait for, through keyspace
//!   notifications on their hashes (or events streams), and fans updates out.
//! - [`ids`]: job ids carry their service and their owner, so ownership
//!   checks need no lookup and work on any gateway.
//! - [`config`], [`limits`], [`metrics`], [`tls`], [`embedded_redis`]: the rest.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gateway::Error> {
//! use gateway::{auth::AuthConfig, Config};
//! let mut config = Config::new("redis://127.0.0.1:6379", AuthConfig::hs256(b"secret".to_vec()));
//! config.services.add_list("demo")?;
//! gateway::run(config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod auth;
pub mod client_ip;
pub mod config;
pub mod dispatch;
pub mod embedded_redis;
pub mod handlers;
pub mod http;
pub mod ids;
pub mod limits;
pub mod log_guard;
pub mod metrics;
pub mod notifier;
pub mod protocol;
pub mod server;
pub mod session;
pub mod state;
pub mod tls;
pub mod upgrade;
pub mod user_connections;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bullmq_wire::{AddBatcher, Connection, Queue, RedisOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{Config, ConfigError};

/// A map read on every call by keys that come from clients or the
/// configuration (job ids, channel names, method and service names):
/// foldhash is several times cheaper than the default SipHash on them, and
/// its `quality` variant, seeded per map, keeps client-chosen keys from
/// being steered into collisions.
pub type FastMap<K, V> = HashMap<K, V, foldhash::quality::RandomState>;
/// A set of such keys (see [`FastMap`]).
pub type FastSet<K> = std::collections::HashSet<K, foldhash::quality::RandomState>;

use crate::auth::{AuthError, Authenticator};
use crate::metrics::{MethodLabels, Metrics};
use crate::notifier::{Notifier, NotifierOptions, NotifyError};
use crate::state::Shared;
use crate::tls::TlsError;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The token key is unusable.
    #[error("auth: {0}")]
    Auth(#[from] AuthError),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Redis could not be reached or refused a setup command.
    #[error("redis: {0}")]
    Redis(String),
    /// The listen address could not be bound.
    #[error("listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

impl From<bullmq_wire::Error> for Error {
    fn from(e: bullmq_wire::Error) -> Self {
        Error::Redis(e.to_string())
    }
}

impl From<NotifyError> for Error {
    fn from(e: NotifyError) -> Self {
        Error::Redis(e.to_string())
    }
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        Error::Redis(e.to_string())
    }
}

/// A bound gateway, not yet serving: [`Gateway::local_addr`] tells the
/// port when the configuration asked for port 0.
pub struct Gateway {
    listener: TcpListener,
    /// `/metrics`' own listener, when configured.
    metrics_listener: Option<(TcpListener, SocketAddr)>,
    shared: Arc<Shared>,
    tls: Option<tls::Acceptor>,
    shutdown: watch::Sender<bool>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// How the gateway reaches Redis: URL, prefix, and the replicas a call's
/// job must reach before the call is acknowledged.
fn redis_options(config: &Config) -> RedisOptions {
    let options = RedisOptions::new(config.redis_url.clone()).with_prefix(config.prefix.clone());
    match config.jobs.replica_acks {
        0 => options,
        n => {
            options.with_replica_acks(n, Duration::from_millis(config.jobs.replica_ack_timeout_ms))
        }
    }
}

impl Gateway {
    /// Validates the configuration, connects to Redis (one multiplexed
    /// connection for every queue call and `/healthz`), opens the service
    /// queues, starts the notifier and binds the listener.
    pub async fn bind(config: Config) -> Result<Self, Error> {
        config.validate()?;
        let auth = Authenticator::new(&config.auth)?;
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let conn = Connection::connect(redis_options(&config)).await?;
        let mut queues = FastMap::default();
        for name in config.services.names() {
            queues.insert(
                name.clone(),
                AddBatcher::new(Queue::new(&name, &conn).await?),
            );
        }
        let metrics = Arc::new(Metrics::new(MethodLabels::new(
            dispatch::known_methods(&config.services),
            config.metrics.metrics_max_methods,
        )));
        let notifier = Notifier::start(
            NotifierOptions {
                connection: conn.clone(),
                prefix: config.prefix.clone(),
                mode: config.notify,
                queues: config.services.names(),
                commands: conn.command_connection(),
                outage_wait: config.limits.watch_outage_wait,
            },
            metrics.clone(),
        )
        .await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::Bind(config.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Bind(config.listen, e))?;
        let metrics_listener = match config.metrics.metrics_listen {
            Some(at) => {
                let l = TcpListener::bind(at)
                    .await
                    .map_err(|e| Error::Bind(at, e))?;
                let bound = l.local_addr().map_err(|e| Error::Bind(at, e))?;
                Some((l, bound))
            }
            None => None,
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(
            config,
            auth,
            queues,
            notifier,
            metrics,
            shutdown_rx,
            conn,
        ));
        Ok(Gateway {
            listener,
            metrics_listener,
            shared,
            tls,
            shutdown,
            addr,
        })
    }

    /// Shows a worker running in this process on `/healthz` (under
    /// `worker`, as `probe` reports it at each request); a second call is
    /// ignored.
    pub fn report_worker(&self, probe: impl Fn() -> serde_json::Value + Send + Sync + 'static) {
        if self
            .shared
            .worker
            .set(state::WorkerProbe(Box::new(probe)))
            .is_err()
        {
            tracing::warn!("a worker is already reported on /healthz; ignoring another");
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` listens when it has its own listener.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(_, a)| *a)
    }

    /// Whether clients connect with `wss://`.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` resolves; then stops accepting, closes every
    /// socket with 1012 (reconnect) and waits up to the grace period for
    /// them. Jobs keep running in the workers.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let Gateway {
            listener,
            metrics_listener,
            shared,
            tls,
            shutdown: stop,
            addr,
        } = self;
        tracing::info!(%addr, tls = tls.is_some(), services = ?shared.config.services.names(), "gateway listening");
        let routes = http::routes(shared.clone());
        let accept = tokio::spawn(server::accept_loop(
            listener,
            tls,
            routes,
            shared.shutdown.clone(),
        ));
        let metrics_accept = metrics_listener.map(|(l, at)| {
            tracing::info!(%at, "metrics listening");
            tokio::spawn(server::accept_loop(
                l,
                None,
                http::metrics_routes(shared.clone()),
                shared.shutdown.clone(),
            ))
        });
        let sweeper = tokio::spawn(sweep(shared.clone()));
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
        let _ = accept.await;
        if let Some(m) = metrics_accept {
            let _ = m.await;
        }
        sweeper.abort();
        let grace = shared.config.limits.shutdown_grace;
        if tokio::time::timeout(grace, shared.slots.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!(
                open = shared.slots.open(),
                "sockets still open after the grace period"
            );
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Drops rate-limit buckets that no socket holds.
async fn sweep(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        shared.user_limits.sweep();
        shared.ip_limits.sweep();
    }
}

/// Binds and serves until `shutdown` resolves (see [`Gateway::serve`]).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    Gateway::bind(config).await?.serve(shutdown).await
}
