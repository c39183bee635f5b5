//! The Rust twin of `node/driver.mjs worker`: a bullmq-wire worker in its
//! own process, so tests can `kill -9` it.
//!
//! `rust_driver worker '<json config>'` prints `{"ready":true}`, then one
//! JSON line per job event (`start`, `completed`, `failed`), and
//! `{"closed":true}` after stdin closes or SIGTERM.
//!
//! Config keys, as the node driver's: `concurrency`, `name`, `lockDuration`,
//! `stalledInterval`, `maxStalledCount`, `drainDelay` (s),
//! `removeOnComplete` / `removeOnFail` (bool, count or `{age, count, limit}`),
//! `limiter` (`{max, duration}`), `metrics` (`{maxDataPoints}`).

use std::time::Duration;

use bullmq_wire::{Connection, RateLimit, RedisOptions, Worker, WorkerOptions};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

fn emit(v: Value) {
    println!("{v}");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cfg: Value = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("worker"), Some(raw)) => match serde_json::from_str(raw) {
            Ok(v) => v,
            Err(e) => return emit(json!({"error": format!("bad config: {e}")})),
        },
        _ => return emit(json!({"error": "usage: rust_driver worker '<json config>'"})),
    };
    let url = cfg["redisUrl"].as_str().unwrap_or("redis://127.0.0.1:6379");
    let prefix = cfg["prefix"].as_str().unwrap_or("bull");
    let queue = cfg["queue"].as_str().unwrap_or("demo").to_string();
    let conn = match Connection::connect(RedisOptions::new(url).with_prefix(prefix)).await {
        Ok(c) => c,
        Err(e) => return emit(json!({"error": e.to_string()})),
    };
    let ms = |k: &str, d: u64| Duration::from_millis(cfg[k].as_u64().unwrap_or(d));
    let limiter = cfg["limiter"].as_object().map(|l| RateLimit {
        max: l.get("max").and_then(Value::as_u64).unwrap_or(1),
        duration: Duration::from_millis(l.get("duration").and_then(Value::as_u64).unwrap_or(1000)),
    });
    // BullMQ's `metrics: {maxDataPoints}`; a bare number is accepted too
    let metrics = cfg["metrics"]["maxDataPoints"]
        .as_u64()
        .or_else(|| cfg["metrics"].as_u64())
        .map(|n| n as u32);
    let opts = WorkerOptions {
        concurrency: cfg["concurrency"].as_u64().unwrap_or(1) as usize,
        name: cfg["name"].as_str().map(str::to_string),
        lock_duration: ms("lockDuration", 30_000),
        stalled_interval: ms("stalledInterval", 30_000),
        max_stalled_count: cfg["maxStalledCount"].as_u64().unwrap_or(1) as u32,
        drain_delay: Duration::from_secs(cfg["drainDelay"].as_u64().unwrap_or(5)),
        remove_on_complete: interop_tests::keep_jobs(&cfg["removeOnComplete"]),
        remove_on_fail: interop_tests::keep_jobs(&cfg["removeOnFail"]),
        limiter,
        metrics_max_data_points: metrics,
        ..Default::default()
    };
    let worker = Worker::start(&queue, &conn, opts, |job| async move {
        emit(json!({"event": "start", "id": job.id, "name": job.name, "attemptsMade": job.attempts_made}));
        let id = job.id.clone();
        let attempts = job.attempts_made;
        let max = job.max_attempts();
        let result = interop_tests::behave(job).await;
        match &result {
            Ok(v) => emit(json!({"event": "completed", "id": id, "returnvalue": v})),
            Err(e) if e.unrecoverable || attempts + 1 >= max => {
                emit(json!({"event": "failed", "id": id, "failedReason": e.message, "attemptsMade": attempts + 1}))
            }
            Err(_) => {}
        }
        result
    })
    .await;
    let worker = match worker {
        Ok(w) => w,
        Err(e) => return emit(json!({"error": e.to_string()})),
    };
    emit(json!({"ready": true}));
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        tokio::select! {
            n = stdin.read(&mut buf) => if matches!(n, Ok(0) | Err(_)) { break },
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => break,
        }
    }
    worker.close_within(Duration::from_secs(5)).await;
    emit(json!({"closed": true}));
}
