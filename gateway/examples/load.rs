//! A quick in-process load check (not the benchmark): a throwaway
//! redis-server, the gateway, a Rust worker echoing `demo.echo`, and S
//! sockets keeping K calls in flight each for D seconds. Prints calls/s
//! and round-trip percentiles.
//!
//! Run with:
//! `cargo run --release -p gateway --example load -- [sockets=50] [in_flight=4] [seconds=5]`

use std::time::{Duration, Instant};

use bullmq_wire::testing::RedisServer;
use bullmq_wire::{Connection, Worker, WorkerOptions};
use futures::{SinkExt, StreamExt};
use gateway::auth::AuthConfig;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (sockets, in_flight, secs) = (
        *args.first().unwrap_or(&50) as usize,
        *args.get(1).unwrap_or(&4) as usize,
        *args.get(2).unwrap_or(&5),
    );
    let redis = RedisServer::start();
    let mut config = gateway::Config::new(redis.url(), AuthConfig::hs256(b"load".to_vec()));
    config.services.add_list("demo").expect("service name");
    config.limits.user_rate.per_second = 0.0;
    config.limits.ip_rate.per_second = 0.0;
    let gw = gateway::Gateway::bind(config).await.expect("gateway");
    let addr = gw.local_addr();
    tokio::spawn(gw.serve(std::future::pending()));
    let conn = Connection::open(&redis.url()).await.expect("redis");
    let opts = WorkerOptions {
        concurrency: 256,
        ..Default::default()
    };
    let _worker = Worker::start("demo", &conn, opts, |job| async move { Ok(job.data) })
        .await
        .expect("worker");
    let exp = jsonwebtoken::get_current_timestamp() + 3600;
    let token = encode(
        &Header::default(),
        &json!({"sub": "load", "exp": exp}),
        &EncodingKey::from_secret(b"load"),
    )
    .expect("token");
    let url = format!("ws://{addr}/ws?token={token}");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..sockets {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connect");
            let mut sent = std::collections::HashMap::new();
            let mut next_id = 0u64;
            let mut rtts = Vec::new();
            let send = |ws_id: u64| {
                let frame = json!({"jsonrpc": "2.0", "id": ws_id, "method": "demo.echo", "params": {"n": ws_id}});
                Message::text(frame.to_string())
            };
            for _ in 0..in_flight {
                ws.send(send(next_id)).await.expect("send");
                sent.insert(next_id, Instant::now());
                next_id += 1;
            }
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(t) = msg else { continue };
                let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
                let Some(id) = v["id"].as_u64() else { continue };
                if let Some(t0) = sent.remove(&id) {
                    rtts.push(t0.elapsed());
                }
                if Instant::now() < deadline {
                    ws.send(send(next_id)).await.expect("send");
                    sent.insert(next_id, Instant::now());
                    next_id += 1;
                } else if sent.is_empty() {
                    break;
                }
            }
            rtts
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{} sockets x {} in flight: {} calls in {:.1}s = {:.0} calls/s; p50 {:?} p99 {:?} p99.9 {:?}",
        sockets,
        in_flight,
        all.len(),
        elapsed,
        all.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99),
        pct(0.999)
    );
    if std::env::var("LOAD_DIAG").is_ok() {
        let queue = bullmq_wire::Queue::handle("demo", &conn).expect("queue");
        let jobs = queue
            .get_jobs(&[bullmq_wire::JobState::Completed], 0, -1, true)
            .await
            .expect("jobs");
        for j in jobs {
            let (t, p, f) = (
                j.timestamp,
                j.processed_on.unwrap_or(0),
                j.finished_on.unwrap_or(0),
            );
            if p - t > 500 || f - p > 500 {
                println!("slow job {}: waited {} ms, ran {} ms", j.id, p - t, f - p);
            }
        }
    }
}
