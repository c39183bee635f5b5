//! The soak program: pushes `--calls N` (default 1,000,000) calls through
//! two gateways served by Rust and Node workers, kills a random worker or
//! gateway (`kill -9`, then starts it again) every `--kill-every` seconds,
//! and prints acknowledged, delivered, lost, duplicated and every
//! process's RSS at the start and the end. Exits 1 when anything
//! acknowledged was lost or finished twice.
//!
//! cargo run --release -p interop-tests --example soak -- --calls 20000 --kill-every 10

use std::sync::Arc;
use std::time::Duration;

use interop_tests::fleet::{self, client, Counters, Fleet, Fsync, Ledger, Plan, Spec};
use rand::Rng as _;
use tokio::time::Instant;

struct Args {
    calls: u64,
    kill_every: u64,
    clients: u64,
    window: usize,
}

fn args() -> Args {
    let mut a = Args {
        calls: 1_000_000,
        kill_every: 20,
        clients: 8,
        window: 64,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair
            .get(1)
            .and_then(|v| v.replace('_', "").parse::<u64>().ok());
        match (pair[0].as_str(), value) {
            ("--calls", Some(v)) => a.calls = v,
            ("--kill-every", Some(v)) => a.kill_every = v.max(1),
            ("--clients", Some(v)) => a.clients = v.max(1),
            ("--window", Some(v)) => a.window = v.max(1) as usize,
            _ => {
                eprintln!("usage: soak [--calls N] [--kill-every SECS] [--clients N] [--window N]");
                std::process::exit(2);
            }
        }
    }
    a
}

fn print_rss(when: &str, fleet: &Fleet) {
    let rss: Vec<String> = fleet
        .rss()
        .iter()
        .map(|(l, kb)| format!("{l}={:.1}MiB", *kb as f64 / 1024.0))
        .collect();
    println!("rss {when}: {}", rss.join(" "));
}

#[tokio::main]
async fn main() {
    let a = args();
    let bins = fleet::build_binaries().unwrap_or_else(|e| fail(&e.to_string()));
    let spec = Spec {
        fsync: Fsync::EverySec,
        gateways: 2,
        rust_workers: 2,
        node_workers: 1,
        concurrency: 32,
        keep_completed_secs: 7200,
    };
    let mut fleet = Fleet::start(&bins, &spec).unwrap_or_else(|e| fail(&e.to_string()));
    let urls = fleet.urls("soak").unwrap_or_else(|e| fail(&e.to_string()));
    println!(
        "soak: {} calls, {} clients x window {}, a kill every {} s, logs {}",
        a.calls,
        a.clients,
        a.window,
        a.kill_every,
        fleet.logs().display()
    );
    print_rss("start", &fleet);
    let started = Instant::now();
    let counters = Arc::new(Counters::default());
    let per_client = a.calls / a.clients;
    let mut tasks = Vec::new();
    for i in 0..a.clients {
        let calls = per_client + u64::from(i < a.calls % a.clients);
        let plan = Plan {
            urls: urls.clone(),
            first: i as usize,
            tag: format!("soak-{i}"),
            calls,
            window: a.window,
            sleep_ms: None,
            // generous: a killed Rust worker's jobs wait for their 30 s locks
            deadline: started + Duration::from_secs(60 + a.calls / 50),
            stale_after: Duration::from_secs(20),
        };
        tasks.push(tokio::spawn(client::run(plan, counters.clone())));
    }
    let mut kills = 0u64;
    let mut next_kill = Instant::now() + Duration::from_secs(a.kill_every);
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if Instant::now() < next_kill {
            continue;
        }
        next_kill = Instant::now() + Duration::from_secs(a.kill_every);
        let n = fleet.gateways.len() + fleet.workers.len();
        let pick = rand::rng().random_range(0..n);
        let what = tokio::task::block_in_place(|| {
            if pick < fleet.gateways.len() {
                let g = &mut fleet.gateways[pick];
                g.restart().map(|_| format!("gateway-{}", pick + 1))
            } else {
                let w = &mut fleet.workers[pick - fleet.gateways.len()];
                w.restart().map(|_| format!("{:?} worker", w.kind()))
            }
        });
        kills += 1;
        let done = counters
            .delivered
            .load(std::sync::atomic::Ordering::Relaxed);
        match what {
            Ok(w) => println!(
                "{:>6.0} s: kill -9 {w} (restarted); {done} delivered",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => fail(&format!("restart failed: {e}")),
        }
    }
    let mut ledger = Ledger::default();
    for t in tasks {
        ledger.merge(t.await.unwrap_or_default());
    }
    if let Err(e) = ledger.audit(&fleet.redis.url()).await {
        fail(&format!("audit: {e}"));
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "calls={} acknowledged={} delivered={} lost={} duplicated={} kills={kills} in {secs:.0} s ({:.0} calls/s)",
        a.calls,
        ledger.acknowledged,
        ledger.delivered,
        ledger.lost,
        ledger.duplicated,
        ledger.delivered as f64 / secs
    );
    println!("ledger: {ledger}");
    print_rss("end", &fleet);
    let exited = fleet.exited();
    if ledger.lost > 0 || ledger.duplicated > 0 || ledger.unacknowledged > 0 || !exited.is_empty() {
        fail(&format!("FAILED (exited: {exited:?})"));
    }
}

fn fail(why: &str) -> ! {
    eprintln!("soak: {why}");
    std::process::exit(1);
}
