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

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::{Sink, SinkExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::protocol::CloseReason;

/// Messages written before one flush.
const MAX_BATCH: usize = 64;

/// A drained queue that grew past this many slots gives its memory back,
/// so a socket that once had a burst holds nothing while idle.
const KEEP_SLOTS: usize = 8;

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

/// What the session and its writer share. A plain queue under a mutex
/// rather than a channel: an idle socket holds ~150 bytes here, where a
/// tokio channel keeps a 32-slot block and a padded header (~1.5 KiB).
struct Queue {
    state: Mutex<State>,
    /// Wakes the writer: something was queued, the session left, or it
    /// asked to cut the socket off. Always `notify_waiters`: while a batch
    /// is written the writer waits for a kill beside it (each waiter makes
    /// its `notified()` before it looks at the state, so nothing is missed
    /// between the look and the wait).
    to_writer: Notify,
    /// Wakes the session: the writer stopped.
    to_session: Notify,
}

struct State {
    items: VecDeque<Out>,
    /// Bytes of text in `items`.
    bytes: usize,
    /// The session dropped its end: write what is queued, then close.
    session_gone: bool,
    /// The writer stopped (broken socket, stall, cut off): nothing more
    /// can be queued.
    writer_gone: bool,
    /// Skip the queue and close with this.
    kill: Option<CloseReason>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The writer stopped: what is queued is dropped (its memory freed),
    /// nothing more can be queued, and the session learns it.
    fn stop(&self) {
        {
            let mut state = self.lock();
            state.writer_gone = true;
            state.items = VecDeque::new();
            state.bytes = 0;
        }
        self.to_session.notify_waiters();
    }
}

/// The session's end of the queue.
pub(crate) struct Outbox {
    queue: Arc<Queue>,
    max_messages: usize,
    max_bytes: usize,
}

impl Outbox {
    pub(crate) fn text(&self, text: String) -> Result<(), Overflow> {
        let len = text.len();
        {
            let mut state = self.queue.lock();
            let over_bytes = state.bytes > 0 && state.bytes + len > self.max_bytes;
            if state.writer_gone || over_bytes || state.items.len() >= self.max_messages {
                return Err(Overflow);
            }
            state.bytes += len;
            state.items.push_back(Out::Text(text));
        }
        self.queue.to_writer.notify_waiters();
        Ok(())
    }

    pub(crate) fn ping(&self, payload: Vec<u8>) -> Result<(), Overflow> {
        {
            let mut state = self.queue.lock();
            if state.writer_gone || state.items.len() >= self.max_messages {
                return Err(Overflow);
            }
            state.items.push_back(Out::Ping(payload));
        }
        self.queue.to_writer.notify_waiters();
        Ok(())
    }

    /// Bytes of text queued now.
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queue.lock().bytes
    }

    /// Resolves when the writer has stopped (the socket is broken or its
    /// writes stalled). Owned, so the session makes it once and keeps it
    /// for its life instead of registering a new waiter every turn.
    pub(crate) fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let queue = self.queue.clone();
        async move {
            loop {
                let woken = queue.to_session.notified();
                if queue.lock().writer_gone {
                    return;
                }
                woken.await;
            }
        }
    }

    /// Closes the socket. A client that is not reading is cut off: the
    /// queue is dropped and the close frame skips it. Otherwise the close
    /// frame is queued, or skips the queue when it is full.
    pub(crate) fn close(self, reason: CloseReason) {
        {
            let mut state = self.queue.lock();
            if reason == CloseReason::SlowConsumer || state.items.len() >= self.max_messages {
                state.kill = Some(reason);
            } else {
                state.items.push_back(Out::Close(reason));
            }
        }
        self.queue.to_writer.notify_waiters();
        // Dropping `self` tells the writer the session is gone.
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.queue.lock().session_gone = true;
        self.queue.to_writer.notify_waiters();
    }
}

/// Starts the writer for `sink`.
pub(crate) fn spawn<S>(sink: S, bounds: Bounds) -> (Outbox, JoinHandle<()>)
where
    S: Sink<Message, Error = WsError> + Unpin + Send + 'static,
{
    let queue = Arc::new(Queue {
        state: Mutex::new(State {
            items: VecDeque::new(),
            bytes: 0,
            session_gone: false,
            writer_gone: false,
            kill: None,
        }),
        to_writer: Notify::new(),
        to_session: Notify::new(),
    });
    let writer = Writer {
        sink,
        queue: queue.clone(),
        bounds,
    };
    let task = tokio::spawn(writer.run());
    (
        Outbox {
            queue,
            max_messages: bounds.messages,
            max_bytes: bounds.bytes,
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

/// Why writing stopped.
enum Stop {
    /// A close frame went out.
    Closed,
    /// The socket is broken.
    Broken,
    /// A write made no progress within the stall timeout.
    Stalled,
}

/// What the writer takes from the queue next.
enum Next {
    /// The session asked to skip the queue and close with this.
    Kill(CloseReason),
    Out(Out),
    /// The session left and the queue is empty.
    End,
}

struct Writer<S> {
    sink: S,
    queue: Arc<Queue>,
    bounds: Bounds,
}

impl<S> Drop for Writer<S> {
    /// However the writer ends, the session learns it and queues no more.
    fn drop(&mut self) {
        self.queue.stop();
    }
}

impl<S> Writer<S>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    async fn run(mut self) {
        loop {
            let first = match next(&self.queue).await {
                Next::Out(first) => first,
                Next::Kill(reason) => return Box::pin(self.cut_off(reason)).await,
                Next::End => {
                    let grace = self.bounds.close_grace;
                    let _ = Box::pin(tokio::time::timeout(grace, self.sink.close())).await;
                    return;
                }
            };
            // The write first: it usually finishes at its first poll, and
            // then no waiter for a kill is registered at all (a kill queued
            // meanwhile is seen by the next `next`).
            let written = tokio::select! {
                biased;
                // Boxed: the write path is the writer's largest state and
                // is live only while writing, not while the socket idles.
                res = Box::pin(Self::write_batch(&mut self.sink, &self.queue, self.bounds, first)) => res.map_err(|stop| match stop {
                    Stop::Stalled => Some(CloseReason::SlowConsumer),
                    Stop::Closed | Stop::Broken => None,
                }),
                reason = killed(&self.queue) => Err(Some(reason)),
            };
            match written {
                Ok(()) => continue,
                Err(Some(reason)) => {
                    if reason == CloseReason::SlowConsumer {
                        tracing::info!("writes stalled; closing");
                    }
                    return Box::pin(self.cut_off(reason)).await;
                }
                Err(None) => return,
            }
        }
    }

    /// Drops what is queued and sends the close frame behind what the
    /// socket already holds, for at most the close grace.
    async fn cut_off(mut self, reason: CloseReason) {
        self.queue.stop();
        let _ = tokio::time::timeout(
            self.bounds.close_grace,
            self.sink.send(close_message(reason)),
        )
        .await;
    }

    /// Writes `first` and whatever else is queued, then flushes once.
    async fn write_batch(
        sink: &mut S,
        queue: &Queue,
        bounds: Bounds,
        first: Out,
    ) -> Result<(), Stop> {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(out) = next.take() {
            let message = match out {
                Out::Text(t) => Message::text(t),
                Out::Ping(p) => Message::Ping(p.into()),
                Out::Close(reason) => {
                    let grace = bounds.close_grace;
                    let _ = tokio::time::timeout(grace, sink.send(close_message(reason))).await;
                    return Err(Stop::Closed);
                }
            };
            within(bounds.stall, sink.feed(message)).await?;
            n += 1;
            if n < MAX_BATCH {
                next = pop(&mut queue.lock());
            }
        }
        within(bounds.stall, sink.flush()).await
    }
}

/// Resolves when the session asks to skip the queue.
async fn killed(queue: &Queue) -> CloseReason {
    loop {
        let woken = queue.to_writer.notified();
        if let Some(reason) = queue.lock().kill.take() {
            return reason;
        }
        woken.await;
    }
}

/// A kill, else the next queued message, else the end once the session
/// left: one lock and one waiter for all three.
async fn next(queue: &Queue) -> Next {
    loop {
        let woken = queue.to_writer.notified();
        {
            let mut state = queue.lock();
            if let Some(reason) = state.kill.take() {
                return Next::Kill(reason);
            }
            if let Some(out) = pop(&mut state) {
                return Next::Out(out);
            }
            if state.session_gone {
                return Next::End;
            }
        }
        woken.await;
    }
}

/// Takes the oldest message, keeping the byte count, and gives a drained
/// queue's memory back once it grew.
fn pop(state: &mut State) -> Option<Out> {
    let out = state.items.pop_front()?;
    if let Out::Text(t) = &out {
        state.bytes = state.bytes.saturating_sub(t.len());
    }
    if state.items.is_empty() && state.items.capacity() > KEEP_SLOTS {
        state.items = VecDeque::new();
    }
    Some(out)
}

/// One sink operation, given at most the stall timeout. Most finish at
/// their first poll (the socket takes the bytes): those read no clock and
/// arm no timer.
async fn within(
    stall: Duration,
    op: impl Future<Output = Result<(), WsError>>,
) -> Result<(), Stop> {
    let mut op = std::pin::pin!(op);
    if let std::task::Poll::Ready(done) = futures::poll!(op.as_mut()) {
        return done.map_err(|_| Stop::Broken);
    }
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

    fn open_sink(
        capacity: usize,
    ) -> (
        impl Sink<Message, Error = WsError> + Unpin + Send + 'static,
        futures::channel::mpsc::Receiver<Message>,
    ) {
        let (sink, peer) = futures::channel::mpsc::channel::<Message>(capacity);
        (sink.sink_map_err(|_| WsError::ConnectionClosed), peer)
    }

    #[tokio::test]
    async fn queued_messages_go_out_in_order_and_the_session_leaving_closes() {
        use futures::StreamExt;
        let (sink, peer) = open_sink(100);
        let (outbox, task) = spawn(sink, bounds(1000));
        outbox.text("a".into()).unwrap();
        outbox.ping(vec![1]).unwrap();
        outbox.text("b".into()).unwrap();
        drop(outbox);
        task.await.unwrap();
        let got: Vec<Message> = peer.collect().await;
        assert_eq!(
            got,
            vec![
                Message::text("a"),
                Message::Ping(vec![1].into()),
                Message::text("b")
            ]
        );
    }

    #[tokio::test]
    async fn cutting_off_a_slow_reader_skips_the_queue() {
        use futures::StreamExt;
        let (sink, peer) = open_sink(100);
        let (outbox, task) = spawn(sink, bounds(1000));
        for i in 0..5 {
            outbox.text(format!("m{i}")).unwrap();
        }
        // The writer has not run yet (one thread): all five are queued.
        outbox.close(CloseReason::SlowConsumer);
        task.await.unwrap();
        let got: Vec<Message> = peer.collect().await;
        assert_eq!(got, vec![close_message(CloseReason::SlowConsumer)]);
    }

    #[tokio::test]
    async fn a_broken_socket_ends_the_writer_and_the_session_learns_it() {
        let (sink, peer) = open_sink(0);
        drop(peer);
        let (outbox, task) = spawn(sink, bounds(1000));
        outbox.text("lost".into()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), outbox.closed())
            .await
            .expect("closed() resolves once the writer stopped");
        task.await.unwrap();
        assert!(
            outbox.text("after".into()).is_err(),
            "nothing is queued any more"
        );
        assert_eq!(outbox.queued_bytes(), 0);
    }
}
