//! The hub task: owns the pub/sub connection, the watched jobs and their
//! subscribers, subscribes and unsubscribes in batched rounds, reads jobs
//! when their hash changes (one read in flight per job, bursts coalesced)
//! and fans updates out to sessions.

use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bullmq_wire::JobSignal;
use bullmq_wire::{CommandConnection, Connection};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

mod delivery;
mod rounds;
mod subs;

use super::events::{Feed, FeedItem};
use super::routes::Routes;
use super::{Command, JobUpdate, Mechanism, NotifyError, Snapshot};
use crate::ids::JobRef;
use crate::metrics::Metrics;
use subs::Subs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubState {
    /// Not subscribed in Redis (new, or after a reconnect).
    Unsubscribed,
    /// In the round in flight.
    Pending,
    /// Confirmed by Redis.
    Subscribed,
}

/// Which of a watched job's channels a message came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// Redis' keyspace channel of the job's hash.
    Keyspace,
    /// The PRD's `job:<jobId>` channel for custom publishers.
    Custom,
}

struct Watch {
    job: JobRef,
    channels: Vec<String>,
    subs: Subs,
    state: SubState,
    waiters: Vec<Waiter>,
    last_progress: Option<Value>,
    /// A read is in flight; `dirty` asks for another one after it.
    fetching: bool,
    dirty: bool,
    /// The hash was seen to exist (so its absence later means removal).
    seen: bool,
    /// The end was delivered; later changes are ignored.
    finished: bool,
    /// Re-read once subscribed again (changes may have been missed).
    catch_up: bool,
    /// The next `hset` is the job's creation (a call's fresh job, watched
    /// before it is added): nothing to read or push yet.
    creation_pending: bool,
    /// The next `hset` after the creation is, for every BullMQ worker,
    /// the move to active, which changes nothing a client sees: it is read
    /// only if nothing else changes within [`ACTIVATION_READ_DELAY`].
    activation_pending: bool,
    /// A read is due at the deadline queued in `Hub::deferred` (a read
    /// made meanwhile clears it).
    deferred: bool,
}

/// A watch waiting for Redis to confirm its subscription; while Redis is
/// unreachable it waits for the pub/sub connection until `until`.
struct Waiter {
    done: oneshot::Sender<Result<(), NotifyError>>,
    until: Instant,
}

/// A subscription round: the connection generation it ran on, its job
/// ids and the outcome.
type Round = BoxFuture<'static, (u64, Vec<Arc<str>>, Result<(), NotifyError>)>;
/// A read of a job: its id, whether it is routed (not watched), the outcome.
type Fetch = BoxFuture<'static, (Arc<str>, bool, Result<Snapshot, NotifyError>)>;
type Connecting = BoxFuture<'static, Result<redis::aio::PubSub, NotifyError>>;

pub(crate) struct Hub {
    /// Where pub/sub clients come from (asked again on each reconnect, so
    /// a Sentinel failover or a lost cluster node is followed).
    connection: Connection,
    reader: CommandConnection,
    prefix: String,
    db: i64,
    mechanism: Mechanism,
    watched_gauge: Arc<Gauges>,
    metrics: Arc<Metrics>,
    watches: FastMap<Arc<str>, Watch>,
    /// Channel name -> job id and which channel it is, for incoming messages.
    channels: FastMap<String, (Arc<str>, Channel)>,
    /// Jobs subscribed in Redis (confirmed or in flight), with their channels.
    subscribed: FastMap<Arc<str>, Vec<String>>,
    to_subscribe: Vec<Arc<str>>,
    to_unsubscribe: Vec<Arc<str>>,
    sink: Option<PubSubSink>,
    /// Bumped on every new pub/sub connection, so a round that ran on an
    /// old one is recognised.
    generation: u64,
    /// The last connection attempt failed: a watch then starts a new
    /// attempt at once (`reconnect_now`, at most one per `RECONNECT_MIN`),
    /// so a watch made just after Redis came back succeeds without waiting
    /// for the backoff; one made while Redis is down waits for the
    /// connection up to `outage_wait`, then fails ("Redis unavailable").
    offline: bool,
    reconnect_now: bool,
    outage_wait: Duration,
    fetches: FuturesUnordered<Fetch>,
    /// Deferred reads, in deadline order (one delay for all).
    deferred: VecDeque<(Instant, Arc<str>)>,
    /// This gateway's reply channel (published mode), subscribed on every
    /// connection before any round: fresh jobs need no channel of their own.
    reply_channel: Option<Arc<str>>,
    /// Fresh calls' sockets, by job id (see `routes.rs`).
    routes: Arc<Routes>,
}

/// How long the read of a fresh job's second `hset` waits for another
/// change. That write is the move to active for every BullMQ worker
/// (ours, Node's and Python's set `processedOn`), so a job that ends
/// within the delay is read once, at its end, instead of twice; were a
/// worker to end a job without writing it at activation, its end would
/// reach the client this much later, never lost.
const ACTIVATION_READ_DELAY: Duration = Duration::from_millis(100);

/// What the hub shows the rest of the gateway.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    /// Jobs watched by at least one socket.
    pub(crate) watched: AtomicUsize,
    /// The pub/sub connection is up.
    pub(crate) subscribed: AtomicBool,
}

// The hub's maps are looked up several times per call, by job id and
// channel name (see `FastMap`).
use crate::FastMap;

const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(1);

impl Hub {
    pub(crate) fn new(
        connection: Connection,
        reader: CommandConnection,
        prefix: String,
        db: i64,
        mechanism: Mechanism,
        watched_gauge: Arc<Gauges>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Hub {
            connection,
            reader,
            prefix,
            db,
            mechanism,
            watched_gauge,
            metrics,
            watches: FastMap::default(),
            channels: FastMap::default(),
            subscribed: FastMap::default(),
            to_subscribe: Vec::new(),
            to_unsubscribe: Vec::new(),
            sink: None,
            generation: 0,
            offline: false,
            reconnect_now: false,
            outage_wait: Duration::ZERO,
            fetches: FuturesUnordered::new(),
            deferred: VecDeque::new(),
            reply_channel: None,
            routes: Arc::default(),
        }
    }

    /// How long a new watch waits for the pub/sub connection while Redis
    /// is unreachable (zero: it fails with the first failed attempt).
    pub(crate) fn outage_wait(mut self, wait: Duration) -> Self {
        self.outage_wait = wait;
        self
    }

    /// Subscribes this channel on every connection (published mode).
    pub(crate) fn reply_channel(mut self, channel: Option<Arc<str>>) -> Self {
        self.reply_channel = channel;
        self
    }

    /// The routes sockets put in place for their fresh calls.
    pub(crate) fn routes(mut self, routes: Arc<Routes>) -> Self {
        self.routes = routes;
        self
    }

    /// Runs until every `Notifier` handle is dropped.
    pub(crate) async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<Command>,
        mut feed: Option<Feed>,
    ) {
        let mut stream: Option<PubSubStream> = None;
        let mut connecting: Option<Connecting> = None;
        let mut retry_at: Option<Instant> = None;
        let mut backoff = RECONNECT_MIN;
        let mut round: Option<Round> = None;
        let mut last_attempt: Option<Instant> = None;
        // one timer for the deferred reads, moved to the earliest deadline
        let mut timer = Box::pin(tokio::time::sleep(Duration::ZERO));
        let mut armed: Option<Instant> = None;
        loop {
            let next_deferred = self.deferred.front().map(|(at, _)| *at);
            if next_deferred != armed {
                if let Some(at) = next_deferred {
                    timer.as_mut().reset(at);
                }
                armed = next_deferred;
            }
            if std::mem::take(&mut self.reconnect_now)
                && last_attempt.is_none_or(|at| at.elapsed() >= RECONNECT_MIN)
            {
                retry_at = None;
            }
            if self.sink.is_none() && connecting.is_none() && retry_at.is_none() {
                last_attempt = Some(Instant::now());
                let connection = self.connection.clone();
                let mut reader = self.reader.clone();
                let keyspace = self.mechanism == Mechanism::Keyspace;
                let reply_channel = self.reply_channel.clone();
                connecting = Some(Box::pin(async move {
                    let client = connection.pubsub_client().await?;
                    let mut pubsub = client.get_async_pubsub().await?;
                    if let Some(channel) = reply_channel {
                        pubsub.subscribe(&*channel).await?;
                    }
                    // CONFIG SET does not survive a Redis restart: apply it
                    // again on every (re)connection.
                    if keyspace {
                        super::enable_keyspace_events(&mut reader).await?;
                    }
                    Ok(pubsub)
                }));
            }
            if round.is_none() {
                round = self.start_round();
            }
            let has_feed = feed.is_some();
            tokio::select! {
                cmd = cmds.recv() => {
                    let Some(cmd) = cmd else { break };
                    self.command(cmd);
                    while let Ok(cmd) = cmds.try_recv() {
                        self.command(cmd);
                    }
                }
                res = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                    connecting = None;
                    match res {
                        Ok(pubsub) => {
                            let (sink, st) = pubsub.split();
                            self.sink = Some(sink);
                            self.generation += 1;
                            self.offline = false;
                            self.watched_gauge.subscribed.store(true, Ordering::Relaxed);
                            stream = Some(st);
                            backoff = RECONNECT_MIN;
                            // what the reply channel said while it was not
                            // subscribed is lost: read the routed jobs
                            self.read_routes();
                        }
                        Err(e) => {
                            tracing::warn!(cause = %e, retry_in = ?backoff, "notifier: cannot connect to redis");
                            retry_at = Some(Instant::now() + backoff);
                            self.offline = true;
                            self.watched_gauge.subscribed.store(false, Ordering::Relaxed);
                            self.expire_waiters(Instant::now());
                            backoff = (backoff * 2).min(RECONNECT_MAX);
                        }
                    }
                }
                _ = async { tokio::time::sleep_until(retry_at.expect("guarded")).await }, if retry_at.is_some() => {
                    retry_at = None;
                }
                msg = async { stream.as_mut().expect("guarded").next().await }, if stream.is_some() => match msg {
                    Some(msg) => {
                        // a watch sent before this message arrived is
                        // registered first: a fresh job's watch is not
                        // waited for (published mode), and its first
                        // update may follow it closely
                        while let Ok(cmd) = cmds.try_recv() {
                            self.command(cmd);
                        }
                        self.message(&msg)
                    }
                    None => {
                        tracing::warn!("notifier: pub/sub connection lost; resubscribing");
                        stream = None;
                        self.watched_gauge.subscribed.store(false, Ordering::Relaxed);
                        self.disconnected();
                    }
                },
                res = async { round.as_mut().expect("guarded").await }, if round.is_some() => {
                    round = None;
                    let (generation, ids, result) = res;
                    if generation == self.generation {
                        if result.is_err() {
                            stream = None;
                        }
                        self.round_done(ids, result);
                    }
                }
                Some((id, routed, res)) = self.fetches.next(), if !self.fetches.is_empty() => {
                    if routed {
                        self.route_fetched(id, res);
                    } else {
                        self.fetched(id, res);
                    }
                }
                _ = &mut timer, if armed.is_some() => {
                    armed = None;
                    self.deferred_due(Instant::now());
                }
                item = async { feed.as_mut().expect("guarded").rx.recv().await }, if has_feed => match item {
                    Some(item) => self.feed(item),
                    None => feed = None,
                },
            }
        }
        tracing::debug!("notifier stopped");
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Watch {
                job,
                session,
                tx,
                new_job,
                done,
            } => {
                self.reconnect_now |= self.offline;
                let id: Arc<str> = Arc::from(job.id.as_str());
                // one lookup of the id for a new watch and for a known one
                let outage_wait = self.outage_wait;
                let w = match self.watches.entry(id) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(new) => {
                        let id = new.key().clone();
                        let mut channels = Vec::new();
                        // a fresh job this gateway adds reports on its reply
                        // channel (published mode): nothing to subscribe
                        if !(new_job && self.reply_channel.is_some()) {
                            channels.push((job.custom_channel(), Channel::Custom));
                        }
                        if self.mechanism == Mechanism::Keyspace {
                            let key = super::job_key(&self.prefix, &job);
                            channels.push((key.keyspace_channel(self.db), Channel::Keyspace));
                        }
                        // nothing to subscribe while connected: watched now
                        let connected = self.sink.is_some();
                        let state = if channels.is_empty() && connected {
                            SubState::Subscribed
                        } else {
                            SubState::Unsubscribed
                        };
                        for (name, kind) in &channels {
                            self.channels.insert(name.clone(), (id.clone(), *kind));
                        }
                        let channels = channels.into_iter().map(|(name, _)| name).collect();
                        if state == SubState::Unsubscribed {
                            self.to_subscribe.push(id);
                        }
                        // only the hub writes the gauge: one more watch
                        self.watched_gauge.watched.fetch_add(1, Ordering::Relaxed);
                        new.insert(Watch {
                            job,
                            channels,
                            subs: Subs::None,
                            state,
                            waiters: Vec::new(),
                            last_progress: None,
                            fetching: false,
                            dirty: false,
                            seen: false,
                            finished: false,
                            catch_up: false,
                            creation_pending: new_job && self.mechanism == Mechanism::Keyspace,
                            activation_pending: false,
                            deferred: false,
                        })
                    }
                };
                if !w.subs.insert(session, tx) {
                    // the socket watched the job already: one watch
                    self.routes.hub_watch_ended();
                }
                if w.state == SubState::Subscribed {
                    let _ = done.send(Ok(()));
                } else {
                    w.waiters.push(Waiter {
                        done,
                        until: Instant::now() + outage_wait,
                    });
                }
            }
            Command::Unwatch { job_id, session } => {
                let empty = match self.watches.get_mut(&job_id) {
                    Some(w) => {
                        if w.subs.remove(session) {
                            self.routes.hub_watch_ended();
                        }
                        w.subs.is_empty()
                    }
                    None => false,
                };
                if empty {
                    self.remove(&job_id);
                }
            }
        }
    }

    fn remove(&mut self, id: &Arc<str>) {
        if let Some(w) = self.watches.remove(id) {
            for c in &w.channels {
                self.channels.remove(c);
            }
            if self.subscribed.contains_key(id) {
                self.to_unsubscribe.push(id.clone());
            }
            self.watched_gauge
                .watched
                .store(self.watches.len(), Ordering::Relaxed);
        }
    }

    fn message(&mut self, msg: &redis::Msg) {
        if self.reply_channel.as_deref() == Some(msg.get_channel_name()) {
            return self.reply(msg);
        }
        let Some((id, kind)) = self.channels.get(msg.get_channel_name()).cloned() else {
            return;
        };
        let Ok(payload) = msg.get_payload::<String>() else {
            return;
        };
        match kind {
            Channel::Keyspace => match JobSignal::from_keyspace(&payload) {
                Some(JobSignal::Changed) => match self.watches.get_mut(&id) {
                    Some(w) if w.creation_pending => {
                        w.creation_pending = false;
                        w.activation_pending = true;
                        w.seen = true;
                    }
                    Some(w) if w.activation_pending => {
                        w.activation_pending = false;
                        w.deferred = true;
                        self.deferred
                            .push_back((Instant::now() + ACTIVATION_READ_DELAY, id));
                    }
                    _ => self.schedule_fetch(&id),
                },
                Some(JobSignal::Removed) => self.deliver(&id, JobUpdate::Removed),
                None => {}
            },
            Channel::Custom => {
                if let Some(update) = super::parse_custom(&payload) {
                    self.deliver(&id, update);
                }
            }
        }
    }

    /// A message on the reply channel: a custom-publisher message that
    /// names its job, or the array of those a worker's script call
    /// published at once.
    fn reply(&mut self, msg: &redis::Msg) {
        let Ok(payload) = std::str::from_utf8(msg.get_payload_bytes()) else {
            return;
        };
        let routes = self.routes.clone();
        let mut routed = routes.lock();
        super::custom::parse_replies(payload, |job_id, update| {
            let watch = self.watches.get_key_value(job_id).map(|(id, _)| id.clone());
            let update = match (routed.get_key_value(job_id), &watch) {
                // a socket that also subscribed to its own call's job
                (Some(_), Some(_)) => {
                    delivery::to_route(&mut routed, job_id, update.clone(), &self.metrics);
                    update
                }
                (Some(_), None) => {
                    return delivery::to_route(&mut routed, job_id, update, &self.metrics);
                }
                (None, _) => update,
            };
            if let Some(id) = watch {
                self.deliver(&id, update);
            }
        });
    }

    fn feed(&mut self, item: FeedItem) {
        match item {
            FeedItem::Changed {
                queue,
                job_id,
                removed,
            } => {
                let id: Arc<str> = Arc::from(job_id.as_str());
                match self.watches.get(&id) {
                    Some(w) if w.job.queue == queue => {}
                    _ => return,
                }
                if removed {
                    self.deliver(&id, JobUpdate::Removed);
                } else {
                    self.schedule_fetch(&id);
                }
            }
            FeedItem::Lagged { queue } => {
                let ids: Vec<Arc<str>> = self
                    .watches
                    .iter()
                    .filter(|(_, w)| w.job.queue == queue)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in ids {
                    self.schedule_fetch(&id);
                }
            }
        }
    }
}
