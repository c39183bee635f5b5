//! The Redis connection every queue, worker and events reader shares
//! (`command`: checked before use after idling, so a Redis restart fails
//! no command), and the dedicated blocking connections workers and events
//! readers open. Connection errors name `host:port` (`address`). One
//! server, a Redis Cluster or a Sentinel set, as the URL says (`target`);
//! Sentinel's master is followed across failovers (`sentinel`), and on a
//! cluster a queue's keys must share a slot (`slot`).

mod address;
mod cluster;
mod command;
mod sentinel;
pub(crate) mod slot;
mod target;

use std::sync::Arc;
use std::time::Duration;

pub(crate) use cluster::not_executed;
use cluster::FollowCluster;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, IntoConnectionInfo, Pipeline, RedisFuture, Value};
pub(crate) use sentinel::is_read_only;

use crate::error::{Error, Result};
use address::{address_of, with_address};
use command::Backend;
pub use command::CommandConnection;
use sentinel::{FollowMaster, SentinelMaster, SentinelSetup};
use target::{Credentials, NodeAddress, Target};

/// The default key prefix, BullMQ's.
pub const DEFAULT_PREFIX: &str = "bull";

/// How to reach Redis: a URL naming one server, a cluster or a Sentinel
/// set, with user and password in it when needed, and the key prefix
/// shared with the other BullMQ clients of the deployment.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// One server: `redis://[user:password@]host:port[/db]`, or `rediss://`
    /// for TLS. A Redis Cluster, from any of its nodes:
    /// `redis+cluster://[user:password@]host:port[,host:port...]` (or
    /// `rediss+cluster://`). A master behind Sentinel:
    /// `redis+sentinel://[user:password@]host:port[,host:port...]/mastername[/db]`
    /// with the sentinels' addresses, the Redis user and password, and the
    /// sentinels' own as `?sentinel_username=..&sentinel_password=..`.
    pub url: String,
    /// Key prefix, `bull` by default. Use a hash tag such as `{bull}` for
    /// Redis Cluster, as with BullMQ.
    pub prefix: String,
    /// How long one command may take before it fails (blocking reads have
    /// their own connections and no such limit).
    pub command_timeout: Duration,
    /// PEM of the CA that signed the server's certificate, for `rediss://`
    /// with a private CA (otherwise the system's roots are used).
    pub tls_ca_pem: Option<Vec<u8>>,
    /// When set, an add (`Queue::add`, `add_bulk`, a flow) is acknowledged
    /// only once this many replicas have its write (`WAIT`), so that a
    /// failover right after cannot lose it. Redis replicates asynchronously:
    /// without it, an add the master acknowledged and died before sending
    /// on is gone.
    pub replica_acks: Option<ReplicaAcks>,
}

/// How many replicas must confirm an add, and how long to wait for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaAcks {
    /// Replicas that must have the write (1 is enough to survive the loss
    /// of the master).
    pub replicas: u32,
    /// How long to wait; after it the add fails with
    /// [`Error::NotReplicated`](crate::Error::NotReplicated) (the job is
    /// written on the master: retry with the same job id).
    pub timeout: Duration,
}

impl RedisOptions {
    /// Options for `url` with the default prefix.
    pub fn new(url: impl Into<String>) -> Self {
        RedisOptions {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_string(),
            command_timeout: Duration::from_secs(30),
            tls_ca_pem: None,
            replica_acks: None,
        }
    }

    /// The same options, acknowledging adds only once `replicas` replicas
    /// have them (see [`RedisOptions::replica_acks`]).
    pub fn with_replica_acks(mut self, replicas: u32, timeout: Duration) -> Self {
        self.replica_acks = Some(ReplicaAcks { replicas, timeout });
        self
    }

    /// The same options with another key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// A cheap-to-clone handle on Redis: one multiplexed, self-reconnecting
/// connection for commands and scripts, plus what is needed to open
/// dedicated blocking connections.
#[derive(Clone)]
pub struct Connection {
    deployment: Deployment,
    commands: CommandConnection,
    prefix: Arc<str>,
    /// With [`RedisOptions::replica_acks`]: the connection adds go through
    /// (each followed by WAIT on it), and what to wait for.
    acked_adds: Option<(CommandConnection, ReplicaAcks)>,
}

/// What blocking connections are opened from.
#[derive(Clone)]
enum Deployment {
    Server(Box<redis::Client>),
    Sentinel(FollowMaster),
    /// A client whose connections wait without a response timeout, and
    /// one client per seed node for pub/sub (tried in turn).
    Cluster(Arc<ClusterClient>, Arc<PubSubSeeds>),
}

/// Seed nodes of a cluster for pub/sub, which is cluster-wide: any node
/// will do, and the next is tried after a failure.
struct PubSubSeeds {
    clients: Vec<redis::Client>,
    next: std::sync::atomic::AtomicUsize,
}

/// A dedicated connection for one blocking reader (`BZPOPMIN`, `XREAD
/// BLOCK`): to the server, to the master Sentinel named when it was opened,
/// or a cluster connection of its own that routes by key.
pub(crate) enum BlockingConnection {
    Server(MultiplexedConnection),
    Cluster(Box<ClusterConnection>),
}

impl ConnectionLike for BlockingConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            BlockingConnection::Server(c) => c.req_packed_command(cmd),
            BlockingConnection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            BlockingConnection::Server(c) => c.req_packed_commands(pipeline, offset, count),
            BlockingConnection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            BlockingConnection::Server(c) => c.get_db(),
            BlockingConnection::Cluster(c) => c.get_db(),
        }
    }
}

/// A blocking read waits this long at most in Redis; the cluster client
/// needs some response timeout, so it gets one well above that.
const BLOCKING_RESPONSE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Opens the command connection for a deployment, and what its blocking
/// connections are opened from.
async fn open(
    target: &Target,
    ca: Option<&[u8]>,
    command_timeout: Duration,
) -> Result<(Deployment, CommandConnection)> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(command_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(2));
    Ok(match target {
        Target::Server { url } => {
            let client = match ca {
                Some(pem) => redis::Client::build_with_tls(
                    url.as_str(),
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem.to_vec()),
                    },
                )?,
                None => redis::Client::open(url.as_str())?,
            };
            let address: Arc<str> = address_of(&client).into();
            let manager = ConnectionManager::new_with_config(client.clone(), config)
                .await
                .map_err(|e| with_address(e, &address))?;
            (
                Deployment::Server(Box::new(client)),
                CommandConnection::new(Backend::Server(manager), address),
            )
        }
        Target::Cluster {
            seeds,
            credentials,
            tls,
        } => {
            let address: Arc<str> = format!("cluster {}", node_list(seeds)).into();
            let commands = FollowCluster::connect(cluster_client(
                seeds,
                credentials,
                *tls,
                ca,
                command_timeout,
            )?)
            .await
            .map_err(|e| with_address(e, &address))?;
            let blocking = cluster_client(seeds, credentials, *tls, ca, BLOCKING_RESPONSE_TIMEOUT)?;
            let pubsub = PubSubSeeds {
                clients: seeds
                    .iter()
                    .map(|n| node_client(n, credentials, *tls, ca))
                    .collect::<Result<_>>()?,
                next: Default::default(),
            };
            (
                Deployment::Cluster(Arc::new(blocking), Arc::new(pubsub)),
                CommandConnection::new(Backend::Cluster(commands), address),
            )
        }
        Target::Sentinel {
            sentinels,
            master_name,
            db,
            redis,
            sentinel,
            tls,
        } => {
            let address: Arc<str> =
                format!("master {master_name} of sentinels {}", node_list(sentinels)).into();
            let master = SentinelMaster::new(SentinelSetup {
                sentinels,
                master_name,
                db: *db,
                redis,
                sentinel,
                tls: *tls,
                tls_ca_pem: ca,
            })?;
            let follow = FollowMaster::connect(master, config)
                .await
                .map_err(|e| match e {
                    Error::Redis(e) => Error::Redis(with_address(e, &address)),
                    other => other,
                })?;
            (
                Deployment::Sentinel(follow.clone()),
                CommandConnection::new(Backend::Sentinel(follow), address),
            )
        }
    })
}

/// `host:port,host:port` of a node list.
fn node_list(nodes: &[NodeAddress]) -> String {
    nodes
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A client for one node of a cluster.
fn node_client(
    node: &NodeAddress,
    credentials: &Credentials,
    tls: bool,
    ca: Option<&[u8]>,
) -> Result<redis::Client> {
    let addr = if tls {
        redis::ConnectionAddr::TcpTls {
            host: node.host.clone(),
            port: node.port,
            insecure: false,
            tls_params: None,
        }
    } else {
        redis::ConnectionAddr::Tcp(node.host.clone(), node.port)
    };
    let mut settings = redis::RedisConnectionInfo::default();
    if let Some(user) = &credentials.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = &credentials.password {
        settings = settings.set_password(password);
    }
    let info = addr.into_connection_info()?.set_redis_settings(settings);
    Ok(match ca {
        Some(pem) if tls => redis::Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        )?,
        _ => redis::Client::open(info)?,
    })
}

fn cluster_client(
    seeds: &[NodeAddress],
    credentials: &Credentials,
    tls: bool,
    tls_ca_pem: Option<&[u8]>,
    response_timeout: Duration,
) -> Result<ClusterClient> {
    let scheme = if tls { "rediss" } else { "redis" };
    let urls: Vec<String> = seeds.iter().map(|n| format!("{scheme}://{n}")).collect();
    let mut builder = ClusterClient::builder(urls)
        .connection_timeout(Duration::from_secs(5))
        .response_timeout(response_timeout)
        .retries(6)
        .max_retry_wait(2_000);
    if let Some(user) = &credentials.username {
        builder = builder.username(user);
    }
    if let Some(password) = &credentials.password {
        builder = builder.password(password);
    }
    if tls {
        builder = builder.tls(redis::TlsMode::Secure);
        if let Some(pem) = tls_ca_pem {
            builder = builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            });
        }
    }
    Ok(builder.build()?)
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.commands.address())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects; fails when the URL is malformed or Redis cannot be reached.
    pub async fn connect(options: RedisOptions) -> Result<Self> {
        if options.prefix.is_empty() {
            return Err(Error::invalid("prefix", "the key prefix must not be empty"));
        }
        let target = Target::parse(&options.url)?;
        let tls = match &target {
            Target::Server { url } => url.starts_with("rediss://"),
            Target::Cluster { tls, .. } | Target::Sentinel { tls, .. } => *tls,
        };
        if tls {
            // Another crate of the program may have installed a provider
            // already; either way one is in place afterwards. rustls 0.23.48
            // deprecates ring's provider for lacking post-quantum key
            // exchange; ring stays our choice (aws-lc-rs needs a C/cmake
            // build), so the deprecation is allowed here, where it is made.
            #[allow(deprecated)]
            let provider = rustls::crypto::ring::default_provider();
            let _ = provider.install_default();
        }
        let ca = options.tls_ca_pem.as_deref();
        let (deployment, commands) = open(&target, ca, options.command_timeout).await?;
        // WAIT blocks its connection, so replicated adds get one of their own
        let acked_adds = match options.replica_acks {
            None => None,
            Some(acks) => {
                let timeout = options.command_timeout + acks.timeout;
                Some((open(&target, ca, timeout).await?.1, acks))
            }
        };
        Ok(Connection {
            deployment,
            commands,
            prefix: options.prefix.into(),
            acked_adds,
        })
    }

    /// A connection that never reaches Redis (feature `testing`): every
    /// command fails at once with a connection error. For jobs built in
    /// memory by `Job::builder`. Must be called inside a Tokio runtime.
    #[cfg(feature = "testing")]
    pub fn detached() -> Result<Self> {
        // port 0 is never listening: connecting fails without a timeout
        let client = redis::Client::open("redis://127.0.0.1:0")?;
        let config = ConnectionManagerConfig::new().set_number_of_retries(0);
        let address: Arc<str> = address_of(&client).into();
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| with_address(e, &address))?;
        Ok(Connection {
            deployment: Deployment::Server(Box::new(client)),
            commands: CommandConnection::new(Backend::Server(manager), address),
            prefix: DEFAULT_PREFIX.into(),
            acked_adds: None,
        })
    }

    /// Shorthand for [`Connection::connect`] with the default prefix.
    pub async fn open(url: &str) -> Result<Self> {
        Self::connect(RedisOptions::new(url)).await
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `host:port` of the server (never a password).
    pub fn address(&self) -> &str {
        self.commands.address()
    }

    /// The shared command connection (clones share one socket and
    /// reconnect by themselves), for commands this library has no method for.
    pub fn command_connection(&self) -> CommandConnection {
        self.commands.clone()
    }

    pub(crate) fn manager(&self) -> CommandConnection {
        self.commands.clone()
    }

    /// The replicas an add waits for, when set.
    pub fn replica_acks(&self) -> Option<ReplicaAcks> {
        self.acked_adds.as_ref().map(|(_, acks)| *acks)
    }

    /// The connection for replicated adds, and what they wait for.
    pub(crate) fn acked_adds(&self) -> Option<(CommandConnection, ReplicaAcks)> {
        self.acked_adds.clone()
    }

    /// `host:port` of the server commands go to now: for Sentinel the
    /// master in use, otherwise [`Connection::address`].
    pub fn serving_address(&self) -> String {
        match &self.deployment {
            Deployment::Sentinel(follow) => follow.address(),
            _ => self.commands.address().to_string(),
        }
    }

    /// True on a Redis Cluster: every queue's keys must then share a slot.
    pub fn is_cluster(&self) -> bool {
        matches!(self.deployment, Deployment::Cluster(..))
    }

    /// A client for pub/sub: the server itself, the master Sentinel names
    /// now, or on a cluster the next seed node (ask again after each
    /// failed or lost connection). On a cluster, pub/sub messages reach
    /// every node but keyspace notifications stay on the node whose key
    /// changed, so watching jobs there reads the events streams instead.
    pub async fn pubsub_client(&self) -> Result<redis::Client> {
        match &self.deployment {
            Deployment::Server(client) => Ok((**client).clone()),
            Deployment::Sentinel(follow) => follow.master().client().await,
            Deployment::Cluster(_, seeds) => {
                let i = seeds
                    .next
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                seeds
                    .clients
                    .get(i % seeds.clients.len().max(1))
                    .cloned()
                    .ok_or_else(|| Error::invalid("redis url", "no cluster node given"))
            }
        }
    }

    /// Opens a new connection without a response timeout, for BZPOPMIN or
    /// XREAD BLOCK, and names it (`CLIENT SETNAME`) when a name is given.
    pub(crate) async fn blocking(&self, name: Option<&str>) -> Result<BlockingConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(None);
        let address = self.commands.address();
        let mut con = match &self.deployment {
            Deployment::Server(client) => BlockingConnection::Server(
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(|e| with_address(e, address))?,
            ),
            Deployment::Sentinel(follow) => {
                let client = follow.master().client().await?;
                BlockingConnection::Server(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                        .map_err(|e| with_address(e, address))?,
                )
            }
            Deployment::Cluster(client, _) => BlockingConnection::Cluster(Box::new(
                client
                    .get_async_connection()
                    .await
                    .map_err(|e| with_address(e, address))?,
            )),
        };
        if let Some(name) = name {
            let _: () = redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(name)
                .query_async(&mut con)
                .await
                .map_err(|e| with_address(e, address))?;
        }
        Ok(con)
    }
}

/// The value behind `mutex`, also after a panic while it was held (what it
/// guards is always whole: it is only ever replaced, never half-written).
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
