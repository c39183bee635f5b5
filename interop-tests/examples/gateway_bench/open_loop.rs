//! The open-loop load: calls go out on a fixed schedule whatever the
//! answers do, and each round trip is measured from the call's *scheduled*
//! send time, so a server that falls behind is charged for the calls it
//! delays (no coordinated omission).
//!
//! One pacer thread walks the schedule (call `j` at `start + j / rate`,
//! on socket `j % sockets`) with `std::thread::sleep`, which overshoots by
//! tens of microseconds where tokio's timer would round up to a millisecond,
//! and hands each call to its socket's sender task; each socket's reader
//! task times the answers. How late the sender tasks wrote the calls
//! (the client's own share of the latency) is reported as `lag`.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::load::{call, connect, new_hist, Target};

pub(crate) struct OpenLoad {
    pub(crate) rate: f64,
    /// Calls scheduled (and sent).
    pub(crate) scheduled: usize,
    pub(crate) answered: usize,
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
    /// From the first scheduled send to the last answer.
    pub(crate) seconds: f64,
    /// Scheduled send to answer, microseconds.
    pub(crate) hist: Histogram<u64>,
    /// Scheduled send to the write of the call, microseconds.
    pub(crate) lag: Histogram<u64>,
}

impl OpenLoad {
    pub(crate) fn achieved(&self) -> f64 {
        self.answered as f64 / self.seconds
    }
    pub(crate) fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
    pub(crate) fn lost(&self) -> usize {
        self.scheduled - self.answered
    }
}

/// `rate` calls/s over `sockets` sockets for `duration`; answers still
/// missing `grace` after the last scheduled send count as lost.
pub(crate) async fn run_open_loop(
    target: &Target,
    sockets: usize,
    rate: f64,
    duration: Duration,
    payload: usize,
    grace: Duration,
) -> Result<OpenLoad, String> {
    let config = WebSocketConfig::default().write_buffer_size(0);
    let mut conns = Vec::with_capacity(sockets);
    for s in 0..sockets {
        conns.push(connect(target, &format!("open-{s}"), config).await?);
    }
    let total = (rate * duration.as_secs_f64()).round() as usize;
    let text = "x".repeat(payload);
    let start = Instant::now() + Duration::from_millis(20);
    let at = move |j: u64| start + Duration::from_secs_f64(j as f64 / rate);
    let deadline = at(total as u64) + grace;
    let mut senders = Vec::with_capacity(sockets);
    let mut readers = Vec::with_capacity(sockets);
    let mut queues = Vec::with_capacity(sockets);
    for (i, ws) in conns.into_iter().enumerate() {
        let (tx, rx) = ws.split();
        let (q_tx, q_rx) = mpsc::unbounded_channel::<(u64, Instant)>();
        queues.push(q_tx);
        senders.push(tokio::spawn(send_calls(tx, q_rx, text.clone())));
        let expected = total / sockets + usize::from(i < total % sockets);
        readers.push(tokio::spawn(read_answers(rx, expected, at, deadline)));
    }
    let pacer = std::thread::spawn(move || {
        for j in 0..total as u64 {
            let due = at(j);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if queues[j as usize % sockets].send((j, due)).is_err() {
                break;
            }
        }
    });
    let mut load = OpenLoad {
        rate,
        scheduled: total,
        answered: 0,
        errors: 0,
        first_error: None,
        seconds: 0.0,
        hist: new_hist(),
        lag: new_hist(),
    };
    let mut last = start;
    for r in futures::future::join_all(readers).await {
        let (hist, errors, first_error, last_answer) = r.map_err(|e| e.to_string())??;
        load.answered += hist.len() as usize;
        load.hist.add(&hist).unwrap();
        load.errors += errors;
        load.first_error = load.first_error.or(first_error);
        last = last.max(last_answer);
    }
    pacer.join().map_err(|_| "pacer thread panicked")?;
    for s in futures::future::join_all(senders).await {
        let lag = s.map_err(|e| e.to_string())??;
        load.lag.add(&lag).unwrap();
    }
    load.seconds = last.saturating_duration_since(start).as_secs_f64();
    Ok(load)
}

type Sink = futures::stream::SplitSink<crate::load::Ws, Message>;
type Source = futures::stream::SplitStream<crate::load::Ws>;

/// Writes each call as the pacer hands it over; returns the lag histogram.
async fn send_calls(
    mut tx: Sink,
    mut queue: mpsc::UnboundedReceiver<(u64, Instant)>,
    text: String,
) -> Result<Histogram<u64>, String> {
    let mut lag = new_hist();
    while let Some((id, due)) = queue.recv().await {
        lag.record(due.elapsed().as_micros().max(1) as u64).unwrap();
        tx.feed(call(id, &text)).await.map_err(|e| e.to_string())?;
        // Calls that came due meanwhile go out in the same write.
        while let Ok((id, due)) = queue.try_recv() {
            lag.record(due.elapsed().as_micros().max(1) as u64).unwrap();
            tx.feed(call(id, &text)).await.map_err(|e| e.to_string())?;
        }
        tx.flush().await.map_err(|e| e.to_string())?;
    }
    // Leave the socket open: the reader may still be waiting for answers.
    Ok(lag)
}

type Answers = Result<(Histogram<u64>, usize, Option<String>, Instant), String>;

/// Reads answers until `expected` have come or `deadline` passes.
async fn read_answers(
    mut rx: Source,
    expected: usize,
    at: impl Fn(u64) -> Instant,
    deadline: Instant,
) -> Answers {
    let mut hist = new_hist();
    let (mut errors, mut first_error, mut last) = (0usize, None, Instant::now());
    while (hist.len() as usize) < expected {
        let next = tokio::time::timeout_at(deadline.into(), rx.next()).await;
        let Ok(msg) = next else { break };
        let msg = msg
            .ok_or("socket closed by the server")?
            .map_err(|e| e.to_string())?;
        let Message::Text(t) = msg else {
            if let Message::Close(f) = msg {
                return Err(format!("closed by the server: {f:?}"));
            }
            continue;
        };
        let now = Instant::now();
        let v: Value =
            serde_json::from_str(&t).map_err(|e| format!("bad JSON from the server: {e}"))?;
        let Some(id) = v.get("id").and_then(Value::as_u64) else {
            if v.get("method").is_none() {
                errors += 1;
                first_error.get_or_insert_with(|| t.to_string());
            }
            continue;
        };
        hist.record(now.saturating_duration_since(at(id)).as_micros().max(1) as u64)
            .unwrap();
        last = now;
        if v["result"]["echo"]["i"] != json!(id) {
            errors += 1;
            first_error.get_or_insert_with(|| t.to_string());
        }
    }
    Ok((hist, errors, first_error, last))
}
