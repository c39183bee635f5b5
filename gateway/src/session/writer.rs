//! The socket's writer task and its bounded queue. The session never
//! waits on the network: it queues, and when the queue is full the client
//! is not reading, so the session closes it (4001) instead of buffering
//! without bound.

use std::time::Duration;

use futures::{Sink, SinkExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::protocol::CloseReason;

/// How long a close frame may take to go out.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Messages written before one flush.
const MAX_BATCH: usize = 64;

pub(crate) enum Out {
    Text(String),
    Ping,
    Close(CloseReason),
}

/// The queue is full, or the writer has stopped.
#[derive(Debug)]
pub(crate) struct Overflow;

/// The session's end of the queue.
pub(crate) struct Outbox {
    tx: mpsc::Sender<Out>,
    kill: Option<oneshot::Sender<CloseReason>>,
}

impl Outbox {
    pub(crate) fn text(&self, text: String) -> Result<(), Overflow> {
        self.tx.try_send(Out::Text(text)).map_err(|_| Overflow)
    }

    pub(crate) fn ping(&self) -> Result<(), Overflow> {
        self.tx.try_send(Out::Ping).map_err(|_| Overflow)
    }

    /// Resolves when the writer has stopped (the socket is broken).
    pub(crate) async fn closed(&self) {
        self.tx.closed().await
    }

    /// Queues the close frame, or, when the queue is full, tells the writer
    /// to skip the queue and send it now.
    pub(crate) fn close(mut self, reason: CloseReason) {
        if self.tx.try_send(Out::Close(reason)).is_err() {
            if let Some(kill) = self.kill.take() {
                let _ = kill.send(reason);
            }
        }
    }
}

/// Starts the writer for `sink` with room for `capacity` messages.
pub(crate) fn spawn<S>(sink: S, capacity: usize) -> (Outbox, JoinHandle<()>)
where
    S: Sink<Message, Error = WsError> + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(capacity);
    let (kill, kill_rx) = oneshot::channel();
    let task = tokio::spawn(run(sink, rx, kill_rx));
    (
        Outbox {
            tx,
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

async fn run<S>(mut sink: S, mut rx: mpsc::Receiver<Out>, kill: oneshot::Receiver<CloseReason>)
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let mut kill = Some(kill);
    loop {
        let first = tokio::select! {
            biased;
            reason = killed(&mut kill) => {
                let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close_message(reason))).await;
                return;
            }
            next = rx.recv() => next,
        };
        let Some(first) = first else {
            let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
            return;
        };
        let written = tokio::select! {
            biased;
            reason = killed(&mut kill) => Err(Some(reason)),
            res = write_batch(&mut sink, &mut rx, first) => res.map_err(|_| None),
        };
        match written {
            Ok(true) => continue,
            Ok(false) => return, // a close frame went out
            Err(Some(reason)) => {
                let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close_message(reason))).await;
                return;
            }
            Err(None) => return, // the socket is broken
        }
    }
}

/// Writes `first` and whatever else is queued, then flushes once. Returns
/// false after a close frame.
async fn write_batch<S>(
    sink: &mut S,
    rx: &mut mpsc::Receiver<Out>,
    first: Out,
) -> Result<bool, WsError>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let mut next = Some(first);
    let mut n = 0;
    while let Some(out) = next.take() {
        match out {
            Out::Text(t) => sink.feed(Message::text(t)).await?,
            Out::Ping => sink.feed(Message::Ping(Default::default())).await?,
            Out::Close(reason) => {
                sink.send(close_message(reason)).await?;
                return Ok(false);
            }
        }
        n += 1;
        if n < MAX_BATCH {
            next = rx.try_recv().ok();
        }
    }
    sink.flush().await?;
    Ok(true)
}
