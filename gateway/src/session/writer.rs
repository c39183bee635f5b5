//! The socket's writer task and its bounded queue. The session never
//! waits on the network: it queues, and when the queue is full (by count
//! or by bytes) the client is not reading, so the session cuts it off
//! (4001) instead of buffering without bound. The writer cuts it off too
//! when one write makes no progress for the stall timeout.
//!
//! Cutting off drops the queue at once (its memory is freed) and sends the
//! close frame behind what was already handed to the socket, so a client
//! that reads again within the close grace still sees the 4001; one that
//! does not is dropped.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{Sink, SinkExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::protocol::CloseReason;

/// Messages written before one flush.
const MAX_BATCH: usize = 64;

/// How much a socket's queue holds and how long its writes may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Messages queued at most.
    pub(crate) messages: usize,
    /// Bytes of text queued at most (a single larger message still goes).
    pub(crate) bytes: usize,
    /// A write (or flush) blocked this long means the client stopped reading.
    pub(crate) stall: Duration,
    /// How long the close frame may take to go out.
    pub(crate) close_grace: Duration,
}

pub(crate) enum Out {
    Text(String),
    Ping(Vec<u8>),
    Close(CloseReason),
}

/// The queue is full, or the writer has stopped.
#[derive(Debug)]
pub(crate) struct Overflow;

/// The session's end of the queue.
pub(crate) struct Outbox {
    tx: mpsc::Sender<Out>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
    kill: Option<oneshot::Sender<CloseReason>>,
}

impl Outbox {
    pub(crate) fn text(&self, text: String) -> Result<(), Overflow> {
        let len = text.len();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.max_bytes {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(Overflow);
        }
        self.tx.try_send(Out::Text(text)).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            Overflow
        })
    }

    pub(crate) fn ping(&self, payload: Vec<u8>) -> Result<(), Overflow> {
        self.tx.try_send(Out::Ping(payload)).map_err(|_| Overflow)
    }

    /// Bytes of text queued now.
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Resolves when the writer has stopped (the socket is broken or its
    /// writes stalled).
    pub(crate) async fn closed(&self) {
        self.tx.closed().await
    }

    /// Closes the socket. A client that is not reading is cut off: the
    /// queue is dropped and the close frame skips it. Otherwise the close
    /// frame is queued, or skips the queue when it is full.
    pub(crate) fn close(mut self, reason: CloseReason) {
        let skip =
            reason == CloseReason::SlowConsumer || self.tx.try_send(Out::Close(reason)).is_err();
        if skip {
            if let Some(kill) = self.kill.take() {
                let _ = kill.send(reason);
            }
        }
    }
}

/// Starts the writer for `sink`.
pub(crate) fn spawn<S>(sink: S, bounds: Bounds) -> (Outbox, JoinHandle<()>)
where
    S: Sink<Message, Error = WsError> + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(bounds.messages);
    let (kill, kill_rx) = oneshot::channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let writer = Writer {
        sink,
        rx,
        queued: queued.clone(),
        bounds,
    };
    let task = tokio::spawn(writer.run(kill_rx));
    (
        Outbox {
            tx,
            queued,
            max_bytes: bounds.bytes,
            kill: Some(kill),
        },
        task,
    )
}

fn close_message(reason: CloseReason) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(reason.code()),
        reason: reason.text().into(),
    }))
}

/// Resolves when the session asks to skip the queue; never when it simply
/// dropped its end (a normal close goes through the queue).
async fn killed(kill: &mut Option<oneshot::Receiver<CloseReason>>) -> CloseReason {
    if let Some(rx) = kill.as_mut() {
        if let Ok(reason) = rx.await {
            return reason;
        }
        *kill = None;
    }
    std::future::pending().await
}

/// Why writing stopped.
enum Stop {
    /// A close frame went out.
    Closed,
    /// The socket is broken.
    Broken,
    /// A write made no progress within the stall timeout.
    Stalled,
}

struct Writer<S> {
    sink: S,
    rx: mpsc::Receiver<Out>,
    queued: Arc<AtomicUsize>,
    bounds: Bounds,
}

impl<S> Writer<S>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    async fn run(mut self, kill: oneshot::Receiver<CloseReason>) {
        let mut kill = Some(kill);
        loop {
            let first = tokio::select! {
                biased;
                reason = killed(&mut kill) => return self.cut_off(reason).await,
                next = self.rx.recv() => next,
            };
            let Some(first) = first else {
                let _ = tokio::time::timeout(self.bounds.close_grace, self.sink.close()).await;
                return;
            };
            let written = tokio::select! {
                biased;
                reason = killed(&mut kill) => Err(Some(reason)),
                res = self.write_batch(first) => res.map_err(|stop| match stop {
                    Stop::Stalled => Some(CloseReason::SlowConsumer),
                    Stop::Closed | Stop::Broken => None,
                }),
            };
            match written {
                Ok(()) => continue,
                Err(Some(reason)) => {
                    if reason == CloseReason::SlowConsumer {
                        tracing::info!("writes stalled; closing");
                    }
                    return self.cut_off(reason).await;
                }
                Err(None) => return,
            }
        }
    }

    /// Drops what is queued and sends the close frame behind what the
    /// socket already holds, for at most the close grace.
    async fn cut_off(mut self, reason: CloseReason) {
        self.rx.close();
        while self.rx.try_recv().is_ok() {}
        self.queued.store(0, Ordering::Release);
        let _ = tokio::time::timeout(
            self.bounds.close_grace,
            self.sink.send(close_message(reason)),
        )
        .await;
    }

    /// Writes `first` and whatever else is queued, then flushes once.
    async fn write_batch(&mut self, first: Out) -> Result<(), Stop> {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(out) = next.take() {
            let message = match out {
                Out::Text(t) => {
                    self.queued.fetch_sub(t.len(), Ordering::AcqRel);
                    Message::text(t)
                }
                Out::Ping(p) => Message::Ping(p.into()),
                Out::Close(reason) => {
                    let grace = self.bounds.close_grace;
                    let _ =
                        tokio::time::timeout(grace, self.sink.send(close_message(reason))).await;
                    return Err(Stop::Closed);
                }
            };
            within(self.bounds.stall, self.sink.feed(message)).await?;
            n += 1;
            if n < MAX_BATCH {
                next = self.rx.try_recv().ok();
            }
        }
        within(self.bounds.stall, self.sink.flush()).await
    }
}

/// One sink operation, given at most the stall timeout.
async fn within(
    stall: Duration,
    op: impl Future<Output = Result<(), WsError>>,
) -> Result<(), Stop> {
    match tokio::time::timeout(stall, op).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Stop::Broken),
        Err(_) => Err(Stop::Stalled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(bytes: usize) -> Bounds {
        Bounds {
            messages: 1000,
            bytes,
            stall: Duration::from_secs(60),
            close_grace: Duration::from_secs(1),
        }
    }

    /// The writer task does not run before the test yields (one thread),
    /// so what is queued stays queued.
    #[tokio::test]
    async fn the_queue_is_bounded_by_bytes_but_one_large_message_goes() {
        let (sink, _peer) = futures::channel::mpsc::channel::<Message>(0);
        let sink = sink.sink_map_err(|_| WsError::ConnectionClosed);
        let (outbox, _task) = spawn(sink, bounds(100));
        assert!(outbox.text("x".repeat(500)).is_ok(), "alone it goes");
        assert!(outbox.text("y".to_string()).is_err(), "over the bound");
        assert_eq!(outbox.queued_bytes(), 500);
    }

    #[tokio::test]
    async fn small_messages_fill_the_byte_bound() {
        let (sink, _peer) = futures::channel::mpsc::channel::<Message>(0);
        let sink = sink.sink_map_err(|_| WsError::ConnectionClosed);
        let (outbox, _task) = spawn(sink, bounds(100));
        for _ in 0..10 {
            assert!(outbox.text("z".repeat(10)).is_ok());
        }
        assert!(outbox.text("z".to_string()).is_err());
        assert_eq!(outbox.queued_bytes(), 100);
    }
}
