//! The notifier: pushes progress and results of the jobs sockets watch,
//! whoever runs them, paying only for watched jobs.
//!
//! One task per gateway (the hub, `hub.rs`) owns a dedicated pub/sub
//! connection. For each watched job it subscribes to two channels:
//! - `__keyspace@<db>__:<prefix>:<queue>:<jobId>`, the keyspace channel of
//!   the job's hash (Redis publishes there on every write when
//!   `notify-keyspace-events` has `K` and `h`, which the gateway enables at
//!   startup). BullMQ's scripts, in any language, write the hash on
//!   progress and at the end, so this works for unmodified Node and Python
//!   workers. On `hset` the hub reads the job's `bullmq_wire::JobSnapshot`
//!   (one `HMGET` of six fields, never the data) and pushes progress when
//!   it changed, or the end; on `del` the job was removed. What each
//!   message and field means is the library's (`bullmq_wire::JobSignal`,
//!   `JobSnapshot`); the notifier holds no BullMQ field or key name.
//! - `job:<jobId>`, the PRD's channel for custom publishers (`custom.rs`
//!   has the message format).
//!
//! When `CONFIG SET` is refused (managed Redis), the hub falls back to one
//! events-stream reader per served queue (`events.rs`), which reads every
//! event of those queues. Subscriptions change in batched rounds, so many
//! new watches cost one `SUBSCRIBE`, and a watch returns only once Redis
//! has confirmed it: callers subscribe first, then read the job's state,
//! so nothing slips between.
//!
//! With `--notify published` the hub also subscribes the gateway's own
//! reply channel, where publishing workers send the progress and end of
//! the jobs this gateway added. A fresh call then needs no watch: its
//! socket puts a route in a map it shares with the hub (`routes.rs`), and
//! the hub reads every routed job again after a reconnect.

mod coarse_timeout;
mod custom;
mod events;
mod hub;
mod routes;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bullmq_wire::{keyspace_flags_for_watching, JobKey, JobSnapshot};
use bullmq_wire::{CommandConnection, Connection};
use tokio::sync::{mpsc, oneshot};

/// What a read of a job tells (the library's type).
pub use bullmq_wire::JobSnapshot as Snapshot;
/// A job's progress or end (the library's type).
pub use bullmq_wire::JobUpdate;
use coarse_timeout::CoarseTimeout;
pub use custom::parse_custom;

use crate::config::NotifyMode;
use crate::ids::JobRef;
use crate::metrics::Metrics;

/// Identifies a socket to the notifier.
pub type SessionId = u64;

/// The slots of a socket's job channel that progress may fill. The
/// channel has these plus one per request the socket may have in flight
/// (each watches at most one job, which ends once), so an end always
/// finds room and progress is what gets dropped for a slow socket.
pub const PROGRESS_EVENTS: usize = 256;

/// The capacity a socket's job channel needs for `max_in_flight` requests.
pub fn job_channel_capacity(max_in_flight: usize) -> usize {
    PROGRESS_EVENTS + max_in_flight.max(1)
}

/// An update for one job, sent to each watching socket.
#[derive(Debug, Clone)]
pub struct JobEvent {
    /// The job id.
    pub job_id: Arc<str>,
    /// What happened.
    pub update: JobUpdate,
}

/// Why the notifier could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotifyError {
    /// Redis failed or could not be reached.
    #[error("redis: {0}")]
    Redis(String),
    /// The subscription was not confirmed in time.
    #[error("subscription not confirmed in time")]
    Timeout,
    /// The notifier has stopped.
    #[error("notifier stopped")]
    Stopped,
}

impl From<redis::RedisError> for NotifyError {
    fn from(e: redis::RedisError) -> Self {
        NotifyError::Redis(e.to_string())
    }
}

impl From<bullmq_wire::Error> for NotifyError {
    fn from(e: bullmq_wire::Error) -> Self {
        match e {
            bullmq_wire::Error::Redis(e) => e.into(),
            other => NotifyError::Redis(other.to_string()),
        }
    }
}

/// How long `watch` waits for Redis to confirm a subscription once the
/// pub/sub connection is up (on top of the outage wait).
const WATCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The period of the watch timeout's shared clock.
const TIMEOUT_TICK: Duration = Duration::from_millis(500);

pub(crate) enum Command {
    Watch {
        job: JobRef,
        session: SessionId,
        tx: mpsc::Sender<JobEvent>,
        /// The job does not exist yet and the caller is about to create it.
        new_job: bool,
        /// Told once Redis confirmed the subscription.
        done: oneshot::Sender<Result<(), NotifyError>>,
    },
    Unwatch {
        job_id: Arc<str>,
        session: SessionId,
    },
}

/// Which mechanism the notifier ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// Keyspace notifications on watched job hashes.
    Keyspace,
    /// An events-stream reader per served queue.
    EventStreams,
    /// Only what workers publish on `job:{jobId}`.
    Published,
}

/// A handle on the hub; clones share it. The hub stops when every handle
/// is dropped.
#[derive(Clone)]
pub struct Notifier {
    cmds: mpsc::UnboundedSender<Command>,
    reader: CommandConnection,
    prefix: Arc<str>,
    watched: Arc<hub::Gauges>,
    mechanism: Mechanism,
    /// With `Mechanism::Published`: this gateway's own channel, subscribed
    /// for as long as the hub is connected, where publishing workers also
    /// send the progress and end of the jobs this gateway added.
    reply_channel: Option<Arc<str>>,
    /// A watch waits this long for Redis to confirm its subscription.
    watch_timeout: Duration,
    /// The clock of that wait (no timer registered per watch).
    timeouts: CoarseTimeout,
    /// Fresh calls' sockets, by job id (published mode), shared with the hub.
    routes: Arc<routes::Routes>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

/// What the notifier needs to start.
#[derive(Debug, Clone)]
pub struct NotifierOptions {
    /// The gateway's Redis connection (one server, Sentinel or cluster),
    /// for pub/sub clients and, in events mode, the streams' readers.
    pub connection: Connection,
    /// The BullMQ prefix.
    pub prefix: String,
    /// Keyspace, events, or auto.
    pub mode: NotifyMode,
    /// The queues served (read in events mode).
    pub queues: Vec<String>,
    /// The gateway's command connection, shared for the notifier's reads
    /// and CONFIG SET (only pub/sub needs a connection of its own).
    pub commands: CommandConnection,
    /// How long a new watch waits for the pub/sub connection while Redis
    /// is unreachable before it fails.
    pub outage_wait: Duration,
}

impl Notifier {
    /// Connects, enables keyspace notifications when allowed, and starts
    /// the hub.
    pub async fn start(
        options: NotifierOptions,
        metrics: Arc<Metrics>,
    ) -> Result<Self, NotifyError> {
        let client = options.connection.pubsub_client().await?;
        let db = client.get_connection_info().redis_settings().db();
        let mut reader = options.commands.clone();
        let cluster = options.connection.is_cluster();
        let mechanism = match options.mode {
            NotifyMode::Events => Mechanism::EventStreams,
            NotifyMode::Published => Mechanism::Published,
            NotifyMode::Keyspace if cluster => {
                return Err(NotifyError::Redis(
                    "keyspace notifications stay on the node whose key changed, so on a Redis \
                 Cluster the gateway reads the queues' events streams: use --notify events or auto"
                        .into(),
                ))
            }
            NotifyMode::Auto if cluster => {
                tracing::info!("Redis Cluster: watching jobs through the queues' events streams");
                Mechanism::EventStreams
            }
            NotifyMode::Keyspace => {
                enable_keyspace_events(&mut reader).await?;
                Mechanism::Keyspace
            }
            NotifyMode::Auto => match enable_keyspace_events(&mut reader).await {
                Ok(()) => Mechanism::Keyspace,
                Err(e) => {
                    tracing::warn!(cause = %e, "cannot enable keyspace notifications; reading events streams instead");
                    Mechanism::EventStreams
                }
            },
        };
        tracing::info!(?mechanism, db, "notifier started");
        let (cmds, rx) = mpsc::unbounded_channel();
        let watched = Arc::new(hub::Gauges::default());
        let routes = Arc::new(routes::Routes::default());
        let events = match mechanism {
            Mechanism::EventStreams => Some(events::start(&options).await?),
            Mechanism::Keyspace | Mechanism::Published => None,
        };
        let reply_channel: Option<Arc<str>> = (mechanism == Mechanism::Published)
            .then(|| format!("bullmq-wire:gateway:{}", uuid::Uuid::new_v4().simple()).into());
        let hub = hub::Hub::new(
            options.connection.clone(),
            reader.clone(),
            options.prefix.clone(),
            db,
            mechanism,
            watched.clone(),
            metrics,
        )
        .outage_wait(options.outage_wait)
        .reply_channel(reply_channel.clone())
        .routes(routes.clone());
        tokio::spawn(hub.run(rx, events));
        Ok(Notifier {
            cmds,
            reader,
            prefix: options.prefix.into(),
            watched,
            mechanism,
            reply_channel,
            watch_timeout: WATCH_TIMEOUT + options.outage_wait,
            timeouts: CoarseTimeout::start(TIMEOUT_TICK),
            routes,
        })
    }

    /// Starts delivering `job`'s updates to `tx`; returns once Redis has
    /// confirmed the subscription. While Redis is unreachable it waits for
    /// the pub/sub connection to come back, up to the outage wait. `new_job`: the job cannot exist yet (its
    /// id is fresh) and the caller creates it next, so the hash write that
    /// creates it needs no read.
    pub async fn watch(
        &self,
        job: JobRef,
        session: SessionId,
        tx: mpsc::Sender<JobEvent>,
        new_job: bool,
    ) -> Result<(), NotifyError> {
        // Published mode, a fresh job: its updates come on the reply
        // channel, subscribed already, so there is nothing to subscribe or
        // confirm, and no hub command: the socket's route is put in place
        // now, before the caller adds the job. Were the connection lost
        // meanwhile, the hub reads the job again once it is back.
        if new_job && self.reply_channel.is_some() && self.subscribed() {
            let id: Arc<str> = Arc::from(job.id.as_str());
            self.routes.insert(id, routes::Route { session, tx, job });
            return Ok(());
        }
        let (done, rx) = oneshot::channel();
        // the id, for the unwatch after a timeout
        let id: Arc<str> = Arc::from(job.id.as_str());
        self.routes.hub_watch_asked();
        if self
            .cmds
            .send(Command::Watch {
                job,
                session,
                tx,
                new_job,
                done,
            })
            .is_err()
        {
            self.routes.hub_watch_ended();
            return Err(NotifyError::Stopped);
        }
        match self.timeouts.run(self.watch_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(NotifyError::Stopped),
            Err(_) => {
                self.unwatch(id, session);
                Err(NotifyError::Timeout)
            }
        }
    }

    /// Where workers should also publish the updates of a job this gateway
    /// adds (`JobOptions::reply_to`), in published mode.
    pub fn reply_channel(&self) -> Option<&str> {
        self.reply_channel.as_deref()
    }

    /// Stops delivering `job_id`'s updates to `session`.
    pub fn unwatch(&self, job_id: impl Into<Arc<str>>, session: SessionId) {
        let job_id = job_id.into();
        self.routes.remove(&job_id, session);
        // a watch in the hub is only there if a socket asked for one
        if !self.routes.hub_watches() {
            return;
        }
        let _ = self.cmds.send(Command::Unwatch { job_id, session });
    }

    /// Reads the job's state now (its [`Snapshot`], never its data).
    pub async fn read(&self, job: &JobRef) -> Result<Snapshot, NotifyError> {
        let key = job_key(&self.prefix, job);
        Ok(JobSnapshot::read(&mut self.reader.clone(), &key).await?)
    }

    /// Jobs watched by at least one socket.
    pub fn watched(&self) -> usize {
        self.watched.watched.load(Ordering::Relaxed) + self.routes.len()
    }

    /// True while the pub/sub connection is up; false while it connects or
    /// reconnects (watches made meanwhile wait for the connection).
    pub fn subscribed(&self) -> bool {
        self.watched.subscribed.load(Ordering::Relaxed)
    }

    /// The mechanism in use.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }
}

/// Where the job's hash lives.
pub(crate) fn job_key(prefix: &str, job: &JobRef) -> JobKey {
    JobKey::new(prefix, &job.queue, &job.id)
}

/// Adds `K`, `h` and `g` to `notify-keyspace-events`, keeping what is set.
pub(crate) async fn enable_keyspace_events(con: &mut CommandConnection) -> Result<(), NotifyError> {
    let current: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(con)
        .await?;
    let value = current.get(1).cloned().unwrap_or_default();
    if let Some(merged) = keyspace_flags_for_watching(&value) {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg(&merged)
            .query_async(con)
            .await?;
        tracing::info!(from = %value, to = %merged, "enabled keyspace notifications");
    }
    Ok(())
}
