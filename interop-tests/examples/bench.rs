//! Side-by-side benchmark: bullmq-wire ("ours"), the official Rust port
//! (`bullmq-official`) and Node `bullmq` 6.7.0 on one Redis, in one run.
//!
//! Run with `cargo run --release -p interop-tests --example bench [count]`.
//! Each peer runs each scenario in its own process (so peak RSS is its own):
//! 10,000 sequential single adds, 10,000 adds in bulks of 50, a worker with
//! concurrency 1, and a worker with concurrency 100 (jobs preloaded; the
//! clock stops when Redis holds all of them in `completed`). It prints
//! jobs/s (the median of `BENCH_ROUNDS` rounds, 3 by default, peers
//! interleaved), our ratio to each peer, peak RSS, what each peer cost
//! Redis per job, and the machine's round-trip floor (a sequential `PING`;
//! on a VM mostly the time an idle core takes to wake, see BENCHMARKS.md;
//! `taskset -c 0` puts Redis and every peer on one core and measures the
//! peers' own cost per job instead).
//! `BENCH_SCENARIOS=add,worker1` runs only the scenarios named.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bullmq_wire::{Connection, JobOptions, NewJob, Queue, Worker, WorkerOptions};
use interop_tests::RedisServer;
use serde_json::{json, Value};

const SCENARIOS: [&str; 4] = ["add", "bulk", "worker1", "worker100"];
const PEERS: [&str; 3] = ["ours", "official", "node"];

fn data(i: usize) -> Value {
    json!({"index": i, "payload": "x".repeat(100)})
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--peer") {
        let (peer, scenario, url, queue, count) = (
            &args[2],
            &args[3],
            &args[4],
            &args[5],
            args[6].parse().unwrap(),
        );
        // BENCH_RUNTIME=current_thread runs both Rust peers on one thread, like Node
        let rt = match std::env::var("BENCH_RUNTIME").as_deref() {
            Ok("current_thread") => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            _ => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap(),
        };
        let seconds = rt.block_on(run_peer(peer, scenario, url, queue, count));
        println!(
            "{}",
            json!({"seconds": seconds, "maxRssKb": peak_rss_kb(), "cpuSeconds": cpu_seconds()})
        );
        return;
    }
    let count: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    interop_tests::setup();
    let server = RedisServer::start();
    println!("bullmq-wire benchmark: {count} jobs per scenario, {rounds} rounds (peers interleaved), one redis-server, peers in separate processes");
    let floor = round_trip_floor(&server.url());
    println!("round-trip floor on this machine: PING {:.0} us, EVALSHA of `return 1` {:.0} us (sequential, one connection)\n", floor.0, floor.1);
    println!("jobs/s: median of the rounds, [min-max] in brackets; ratios are of medians");
    println!(
        "{:<10} {:>22} {:>22} {:>22} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "scenario",
        "ours/s",
        "official/s",
        "node/s",
        "x offic.",
        "x node",
        "rss ours",
        "rss off.",
        "rss node"
    );
    let mut costs = Vec::new();
    // BENCH_SCENARIOS=add,worker1 runs only those
    let only: Option<Vec<String>> = std::env::var("BENCH_SCENARIOS")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    for scenario in SCENARIOS
        .into_iter()
        .filter(|s| only.as_ref().is_none_or(|o| o.iter().any(|x| x == s)))
    {
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); PEERS.len()];
        let mut rss = [0.0f64; 3];
        let mut cost = [[0.0f64; 5]; 3];
        for _ in 0..rounds {
            for (p, peer) in PEERS.iter().enumerate() {
                let before = redis_stats(&server.url());
                let queue = format!("bench-{scenario}-{peer}");
                if scenario.starts_with("worker") {
                    preload(&server.url(), &queue, count);
                }
                let out = if *peer == "node" {
                    Command::new(interop_tests::clients::node())
                        .arg(interop_tests::clients::interop_dir().join("node/bench.mjs"))
                        .args([scenario, &server.url(), &queue, &count.to_string()])
                        .output()
                } else {
                    Command::new(std::env::current_exe().unwrap())
                        .args([
                            "--peer",
                            peer,
                            scenario,
                            &server.url(),
                            &queue,
                            &count.to_string(),
                        ])
                        .output()
                }
                .expect("run peer");
                let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
                    panic!(
                        "{peer} {scenario}: {}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    )
                });
                rates[p].push(count as f64 / v["seconds"].as_f64().unwrap());
                rss[p] = rss[p].max(v["maxRssKb"].as_f64().unwrap_or(0.0) / 1024.0);
                let after = redis_stats(&server.url());
                let n = count as f64 * rounds as f64;
                cost[p][0] += (after.1 - before.1) / n;
                cost[p][1] += (after.2 - before.2) / n;
                cost[p][2] += (after.3 - before.3) / n;
                cost[p][3] += (after.0 - before.0) * 1e6 / n;
                cost[p][4] += v["cpuSeconds"].as_f64().unwrap_or(0.0) * 1e6 / n;
                flushall(&server.url());
            }
        }
        for (p, peer) in PEERS.iter().enumerate() {
            let c = cost[p];
            costs.push(format!(
                "{scenario:<10} {peer:<9} {:>8.2} {:>10.1} {:>12.1} {:>12.1} {:>12.1}",
                c[0], c[1], c[2], c[3], c[4]
            ));
        }
        let med: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
        let cell = |r: &Vec<f64>, m: f64| format!("{m:.0} [{:.0}-{:.0}]", r[0], r[r.len() - 1]);
        println!(
            "{:<10} {:>22} {:>22} {:>22} {:>9.2} {:>9.2} {:>7.1}MB {:>7.1}MB {:>7.1}MB",
            scenario,
            cell(&rates[0], med[0]),
            cell(&rates[1], med[1]),
            cell(&rates[2], med[2]),
            med[0] / med[1],
            med[0] / med[2],
            rss[0],
            rss[1],
            rss[2]
        );
    }
    println!("\nRedis cost per job, mean over the rounds (script calls, all commands incl. those inside scripts, redis cpu; worker rows include the preload)");
    println!(
        "{:<10} {:<9} {:>8} {:>10} {:>12} {:>12} {:>12}",
        "scenario", "peer", "scripts", "commands", "script us", "redis cpu us", "client cpu us"
    );
    for line in costs {
        println!("{line}");
    }
}

/// Sorts `values` and returns their median.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Microseconds per sequential round trip of `PING` and of a script that
/// does nothing, on one connection: no peer's sequential add or
/// concurrency-1 worker can beat one such round trip per job.
fn round_trip_floor(url: &str) -> (f64, f64) {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return 1")
        .query(&mut con)
        .unwrap();
    // interleaved, so that both see the same machine
    let n = 5000;
    let (mut ping, mut eval) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..n {
        let t = Instant::now();
        let _: String = redis::cmd("PING").query(&mut con).unwrap();
        ping += t.elapsed();
        let t = Instant::now();
        let _: i64 = redis::cmd("EVALSHA")
            .arg(&sha)
            .arg(0)
            .query(&mut con)
            .unwrap();
        eval += t.elapsed();
    }
    let (ping, eval) = (
        ping.as_secs_f64() * 1e6 / n as f64,
        eval.as_secs_f64() * 1e6 / n as f64,
    );
    flushall(url);
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con).unwrap();
    (ping, eval)
}

/// (redis cpu seconds, script calls, redis commands incl. those inside
/// scripts, microseconds Redis spent executing scripts)
fn redis_stats(url: &str) -> (f64, f64, f64, f64) {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    let info: String = redis::cmd("INFO").arg("all").query(&mut con).unwrap();
    let (mut cpu, mut scripts, mut calls, mut script_us) = (0.0, 0.0, 0.0, 0.0);
    for line in info.lines() {
        if let Some(v) = line
            .strip_prefix("used_cpu_sys:")
            .or_else(|| line.strip_prefix("used_cpu_user:"))
        {
            cpu += v.trim().parse::<f64>().unwrap_or(0.0);
        }
        if let Some(rest) = line.strip_prefix("cmdstat_") {
            let n: f64 = rest
                .split("calls=")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .and_then(|c| c.parse().ok())
                .unwrap_or(0.0);
            if rest.starts_with("evalsha:") || rest.starts_with("eval:") {
                scripts += n;
                script_us += rest
                    .split("usec=")
                    .nth(1)
                    .and_then(|r| r.split(',').next())
                    .and_then(|c| c.parse::<f64>().ok())
                    .unwrap_or(0.0);
            }
            if !rest.starts_with("info:") {
                calls += n;
            }
        }
    }
    (cpu, scripts, calls, script_us)
}

fn preload(url: &str, queue: &str, count: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = Connection::open(url).await.unwrap();
        let q = Queue::new(queue, &conn).await.unwrap();
        for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
            let jobs = chunk
                .iter()
                .map(|i| NewJob::new("bench", &data(*i), JobOptions::default()))
                .collect();
            q.add_bulk(jobs).await.unwrap();
        }
    });
}

fn flushall(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
}

/// user + system CPU time of this process, from /proc/self/stat (ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn wait_completed(url: &str, queue: &str, n: usize) {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    loop {
        let done: usize = redis::cmd("ZCARD")
            .arg(format!("bull:{queue}:completed"))
            .query_async(&mut con)
            .await
            .unwrap();
        if done >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn run_peer(peer: &str, scenario: &str, url: &str, queue: &str, count: usize) -> f64 {
    match peer {
        "ours" => run_ours(scenario, url, queue, count).await,
        "official" => run_official(scenario, url, queue, count).await,
        other => panic!("unknown peer {other}"),
    }
}

async fn run_ours(scenario: &str, url: &str, queue: &str, count: usize) -> f64 {
    let conn = Connection::open(url).await.unwrap();
    let q = Queue::new(queue, &conn).await.unwrap();
    let t = Instant::now();
    match scenario {
        "add" => {
            for i in 0..count {
                q.add("bench", &data(i), JobOptions::default())
                    .await
                    .unwrap();
            }
        }
        "bulk" => {
            for start in (0..count).step_by(50) {
                let jobs = (start..(start + 50).min(count))
                    .map(|i| NewJob::new("bench", &data(i), JobOptions::default()))
                    .collect();
                q.add_bulk(jobs).await.unwrap();
            }
        }
        _ => {
            let concurrency = if scenario == "worker1" { 1 } else { 100 };
            let opts = WorkerOptions {
                concurrency,
                ..Default::default()
            };
            let worker =
                Worker::start(queue, &conn, opts, |_job| async { Ok(json!({"ok": true})) })
                    .await
                    .unwrap();
            wait_completed(url, queue, count).await;
            let s = t.elapsed().as_secs_f64();
            worker.close().await;
            return s;
        }
    }
    t.elapsed().as_secs_f64()
}

async fn run_official(scenario: &str, url: &str, queue: &str, count: usize) -> f64 {
    use bullmq::options::RedisConnectionOptions;
    let connection = RedisConnectionOptions {
        url: url.to_string(),
        ..Default::default()
    };
    let q = bullmq::Queue::with_options(
        queue,
        bullmq::QueueOptions {
            connection: connection.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let t = Instant::now();
    match scenario {
        "add" => {
            for i in 0..count {
                q.add("bench", data(i)).await.unwrap();
            }
        }
        "bulk" => {
            for start in (0..count).step_by(50) {
                let jobs = (start..(start + 50).min(count))
                    .map(|i| bullmq::BulkJob::new("bench", data(i)))
                    .collect();
                q.add_bulk(jobs).await.unwrap();
            }
        }
        _ => {
            let concurrency = if scenario == "worker1" { 1 } else { 100 };
            let processor: bullmq::worker::ProcessorFn =
                Arc::new(|_job, _token| Box::pin(async { Ok(json!({"ok": true})) }));
            let opts = bullmq::WorkerOptions {
                connection,
                concurrency,
                autorun: true,
                ..Default::default()
            };
            let worker = bullmq::Worker::with_options(queue, processor, opts)
                .await
                .unwrap();
            wait_completed(url, queue, count).await;
            let s = t.elapsed().as_secs_f64();
            let _ = worker.close(5000).await;
            return s;
        }
    }
    t.elapsed().as_secs_f64()
}
