//! One task per socket: it selects over the client's frames, job updates
//! from the notifier, finished handler tasks, the heartbeat tick, the
//! token's expiry and shutdown, and owns everything about the socket.
//! Writes go through a bounded queue to a writer task (`writer.rs`).

mod adds;
mod call;
mod jobs;
mod pending;
mod requests;
mod tasks;
mod writer;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;

use crate::auth::Claims;
use crate::ids::Owner;
use crate::limits::{Bucket, InvalidFrames, Slot};
use crate::notifier::{JobEvent, SessionId, Snapshot};
use crate::protocol::{CloseReason, Response, RpcError};
use crate::state::Shared;
use pending::{Batches, Pending, ReplyTo};
use writer::{Bounds, Outbox};

/// Maps keyed by job ids: long, and chosen by clients.
use crate::FastMap;

pub use adds::{finished as add_finished, AddInFlight, AddWaiter};
pub(crate) use call::Call;

/// Pings remembered while their pongs are awaited (the oldest is kept).
const MAX_UNANSWERED_PINGS: usize = 16;

/// What the upgrade hands to a session.
#[derive(Debug)]
pub struct SessionInit {
    /// The verified token.
    pub claims: Claims,
    /// The client's IP, for the per-IP rate limit.
    pub ip: IpAddr,
    /// The connection slot, freed when the session ends.
    pub slot: Slot,
    /// The user's connection place, freed when the session ends.
    pub user_slot: crate::user_connections::UserSlot,
}

/// What a finished handler task reports.
pub(crate) enum TaskDone {
    /// A built-in's answer.
    Reply {
        reply_to: ReplyTo,
        label: String,
        started: Instant,
        response: Response,
    },
    /// A submit or subscribe with an id: the watch is in place (and maybe
    /// the job's current state is known), or it failed.
    Watch {
        job_id: Arc<str>,
        token: u64,
        result: Result<Option<Snapshot>, RpcError>,
    },
    /// A fire-and-forget submit.
    Fired {
        label: String,
        result: Result<Option<Snapshot>, RpcError>,
    },
}

pub(crate) struct Session {
    shared: Arc<Shared>,
    id: SessionId,
    sub: String,
    owner: Owner,
    /// When the token expires (plus leeway), seconds since the epoch.
    deadline: u64,
    outbox: Outbox,
    /// The channel job updates come in on, made at the first watch and
    /// dropped when nothing is watched: an idle socket does not hold its
    /// first block (32 updates, ~3 KiB).
    jobs_tx: Option<mpsc::Sender<JobEvent>>,
    /// Its receiving end, until `serve` takes it at the top of a turn.
    new_jobs_rx: Option<mpsc::Receiver<JobEvent>>,
    pending: Pending,
    /// Jobs this socket is adding (a subscribe to one waits for its add).
    adds: adds::Adds,
    batches: Batches,
    tasks: tasks::Tasks,
    user_bucket: Option<Arc<Bucket>>,
    ip_bucket: Option<Arc<Bucket>>,
    limited_in_a_row: u32,
    /// Frames that carried no request, in the current window.
    invalid_frames: InvalidFrames,
    /// Set when the socket must close; the loop stops at the next turn.
    closing: Option<CloseReason>,
    /// When the frame being handled arrived (also the last sign of life):
    /// read once per frame, for the rate limits, the invalid-frame window
    /// and the calls' latency alike.
    received: Instant,
    /// The connection's places (overall and the user's), freed when the
    /// session ends.
    _places: (Slot, crate::user_connections::UserSlot),
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn instant_at(epoch: u64) -> Instant {
    let now = Instant::now();
    let wait = Duration::from_secs(epoch.saturating_sub(epoch_secs()).min(MAX_EXPIRY_WAIT_SECS));
    now.checked_add(wait).unwrap_or(now)
}

/// A token's expiry further out than this (a year) is waited for a year at
/// a time: `exp` comes from the client and may be near `u64::MAX`, which no
/// `Instant` can hold.
const MAX_EXPIRY_WAIT_SECS: u64 = 365 * 24 * 3600;

/// Runs a socket until it closes. The setup happens here, before the
/// returned future is polled, so the spawned task holds only the session's
/// loop (a generator that also kept the setup's locals measured 4.4 KB per
/// socket; the loop alone 1.5 KB).
pub fn run<S>(
    ws: WebSocketStream<S>,
    shared: Arc<Shared>,
    init: SessionInit,
) -> impl std::future::Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = shared.next_session_id();
    let span = tracing::info_span!("session", conn_id = id, user = %crate::log_guard::Untrusted(&init.claims.sub), ip = %init.ip);
    let (sink, stream) = ws.split();
    let limits = &shared.config.limits;
    let bounds = Bounds {
        messages: limits.send_queue,
        bytes: limits.send_queue_bytes,
        stall: limits.write_stall_timeout,
        close_grace: limits.close_grace,
    };
    let (outbox, writer) = span.in_scope(|| writer::spawn(sink, bounds));
    let session = Session {
        id,
        owner: Owner::of(&init.claims.sub),
        deadline: shared.auth.deadline(&init.claims),
        user_bucket: shared.user_limits.bucket(&init.claims.sub),
        sub: init.claims.sub,
        outbox,
        jobs_tx: None,
        new_jobs_rx: None,
        pending: Pending::default(),
        adds: adds::Adds::default(),
        batches: Batches::default(),
        tasks: tasks::Tasks::default(),
        ip_bucket: shared.ip_limits.bucket(&init.ip),
        limited_in_a_row: 0,
        invalid_frames: InvalidFrames::new(
            limits.max_invalid_frames,
            limits.invalid_frames_window,
            std::time::Instant::now(),
        ),
        closing: None,
        received: Instant::now(),
        _places: (init.slot, init.user_slot),
        shared,
    };
    span.in_scope(|| tracing::debug!("connected"));
    session.serve(stream, writer).instrument(span)
}

impl Session {
    async fn serve<St>(mut self, mut stream: St, writer: tokio::task::JoinHandle<()>)
    where
        St: Stream<Item = Result<Message, WsError>> + Unpin,
    {
        // Shutdown and the writer's end, each one future kept for the
        // session's life: made afresh every turn, each registered a new
        // waiter (a lock and a list insert and removal per frame).
        let mut shutdown = self.shared.shutdown.clone();
        let stopping = async move {
            // The sender gone counts as shutting down too.
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        tokio::pin!(stopping);
        let writer_gone = self.outbox.closed();
        tokio::pin!(writer_gone);
        // One timer for the heartbeat and the token's expiry: a timer is a
        // boxed `Sleep` (~110 bytes) that an idle socket holds for its life.
        let mut next_ping = Instant::now() + self.shared.config.limits.ping_interval;
        let mut expires = instant_at(self.deadline);
        let mut timer = Box::pin(tokio::time::sleep_until(next_ping.min(expires)));
        // Pings whose pong is awaited, oldest first: payload and when it
        // was queued. A client that reads answers them; one that only
        // writes does not, and is cut off once the oldest is too old.
        let mut unanswered: std::collections::VecDeque<([u8; 8], Instant)> =
            std::collections::VecDeque::new();
        let mut jobs_rx: Option<mpsc::Receiver<JobEvent>> = None;
        let reason: Option<CloseReason> = loop {
            if let Some(r) = self.closing {
                break Some(r);
            }
            if *self.shared.shutdown.borrow() {
                break Some(CloseReason::ServiceRestart);
            }
            if jobs_rx.is_none() {
                jobs_rx = self.new_jobs_rx.take();
            } else if self.pending.len() == 0 && self.tasks.is_empty() {
                // Nothing is watched or being set up: the channel and its
                // first block go until the next watch makes a new one (the
                // hub drops its senders at the unwatch each job end sends).
                jobs_rx = None;
                self.jobs_tx = None;
            }
            // Not biased: a client that keeps sending must not starve its own
            // handler tasks and job updates (shutdown and closing are checked
            // at the top of every turn).
            tokio::select! {
                _ = &mut stopping => break Some(CloseReason::ServiceRestart),
                frame = stream.next() => match frame {
                    None => break None,
                    Some(Err(WsError::Capacity(_))) => break Some(CloseReason::MessageTooBig),
                    Some(Err(WsError::Utf8(_))) => break Some(CloseReason::InvalidPayload),
                    Some(Err(e)) => {
                        tracing::debug!(cause = %e, "socket error");
                        break None;
                    }
                    Some(Ok(msg)) => {
                        self.received = Instant::now();
                        match msg {
                            Message::Text(text) => self.on_text(text.as_str()),
                            Message::Binary(_) => self.on_binary(),
                            Message::Close(_) => break None,
                            Message::Pong(p) => {
                                if let Some(i) = unanswered.iter().position(|(sent, _)| p.as_ref() == sent) {
                                    unanswered.drain(..=i);
                                }
                            }
                            Message::Ping(_) | Message::Frame(_) => {}
                        }
                    }
                },
                Some(ev) = async {
                    match jobs_rx.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => self.on_job_event(ev),
                Some(done) = self.tasks.next(), if !self.tasks.is_empty() => self.on_task_done(done),
                _ = &mut timer => {
                    let now = Instant::now();
                    if now >= expires {
                        if epoch_secs() >= self.deadline {
                            break Some(CloseReason::TokenExpired);
                        }
                        expires = instant_at(self.deadline);
                    }
                    if now >= next_ping {
                        // A late tick delays the next one by a whole period.
                        next_ping = now + self.shared.config.limits.ping_interval;
                        if now.saturating_duration_since(self.received) >= self.shared.config.limits.idle_timeout {
                            break Some(CloseReason::HeartbeatTimeout);
                        }
                        if unanswered.front().is_some_and(|(_, sent)| sent.elapsed() >= self.shared.config.limits.write_stall_timeout) {
                            tracing::info!("pings unanswered: not reading; closing");
                            break Some(CloseReason::SlowConsumer);
                        }
                        let payload: [u8; 8] = rand::random();
                        if self.outbox.ping(payload.to_vec()).is_err() {
                            self.closing = Some(CloseReason::SlowConsumer);
                        }
                        if unanswered.len() >= MAX_UNANSWERED_PINGS {
                            unanswered.pop_back();
                        }
                        unanswered.push_back((payload, now));
                    }
                    timer.as_mut().reset(next_ping.min(expires));
                }
                _ = &mut writer_gone => break None,
            }
        };
        tracing::debug!(close = ?reason, "disconnecting");
        if matches!(
            reason,
            Some(CloseReason::InvalidFrames | CloseReason::RateLimitAbuse)
        ) {
            self.shared.user_connections.cool_down(&self.sub);
        }
        for job in self.pending.jobs() {
            self.shared.notifier.unwatch(job, self.id);
        }
        match reason {
            Some(r) => self.outbox.close(r),
            None => drop(self.outbox),
        }
        let _ = tokio::time::timeout(self.shared.config.limits.close_grace * 2, writer).await;
        // Read on until the client's close reply, so our close frame is not
        // lost to a reset when unread data is still on the way.
        let _ = tokio::time::timeout(self.shared.config.limits.close_grace, async {
            while let Some(Ok(_)) = stream.next().await {}
        })
        .await;
    }

    /// The sender watches deliver this socket's job updates to, made with
    /// its channel at the first watch.
    fn job_sender(&mut self) -> mpsc::Sender<JobEvent> {
        if let Some(tx) = &self.jobs_tx {
            return tx.clone();
        }
        let capacity =
            crate::notifier::job_channel_capacity(self.shared.config.limits.max_in_flight);
        let (tx, rx) = mpsc::channel(capacity);
        self.jobs_tx = Some(tx.clone());
        self.new_jobs_rx = Some(rx);
        tx
    }

    /// Queues a frame; a full queue means the client stopped reading.
    fn push(&mut self, text: String) {
        if self.closing.is_none() && self.outbox.text(text).is_err() {
            tracing::info!("send queue full; closing");
            self.closing = Some(CloseReason::SlowConsumer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_near_u64_max_is_a_bounded_wait() {
        let at = instant_at(u64::MAX);
        let wait = at.duration_since(Instant::now());
        assert!(wait <= Duration::from_secs(MAX_EXPIRY_WAIT_SECS));
        assert!(wait > Duration::from_secs(MAX_EXPIRY_WAIT_SECS - 60));
    }

    #[test]
    fn a_past_expiry_is_now() {
        assert!(instant_at(0) <= Instant::now());
    }
}
