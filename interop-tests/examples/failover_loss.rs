//! How many acknowledged adds a failover loses, with and without replica
//! acks: a measurement that prints numbers, not a test.
//!
//! `cargo run --release -p interop-tests --example failover_loss -- \
//!     [--rounds 5] [--producers 64] [--batch 1] [--payload 100] \
//!     [--before-secs 3] [--after-secs 2] [--restart-delay-secs 0] \
//!     [--deployment cluster|sentinel|both] [--acks off|1|both]`
//!
//! Each round starts a fresh deployment (a 6-node `RedisCluster` or a
//! `RedisSentinelSet`), runs `--producers` concurrent tasks that add jobs
//! with their own ids (`add_bulk` of `--batch` jobs per call; a failed call
//! is retried with the same ids) and records every id whose add was
//! acknowledged. After `--before-secs` the master of the queue's slot is
//! killed with SIGKILL; once a replica has taken over (and
//! `--restart-delay-secs` later), the old node is started again: it comes
//! back empty, as a replica in a cluster, and as an empty master in a
//! Sentinel set until the sentinels reconfigure it. The producers
//! keep going until `--after-secs` after their first add that succeeded
//! once the kill was done; then every acknowledged id is looked up on the
//! master: an acknowledged id whose job hash is missing is lost ("lost pre":
//! acknowledged before the kill, i.e. not yet replicated). When some are
//! lost, the line ends with where the acknowledged ids are: per data node,
//! its role and how many of the ids acknowledged before/after the kill it
//! holds.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bullmq_wire::testing::{RedisCluster, RedisSentinelSet};
use bullmq_wire::{Connection, Error, JobOptions, NewJob, Queue, RedisOptions};
use serde_json::json;

const PREFIX: &str = "{bull}";
const QUEUE: &str = "orders";

#[derive(Debug, Clone)]
struct Args {
    rounds: usize,
    producers: usize,
    batch: usize,
    payload: usize,
    before: Duration,
    after: Duration,
    restart_delay: Duration,
    deployments: Vec<&'static str>,
    acks: Vec<Option<u32>>,
}

fn parse_args() -> Args {
    let mut args = Args {
        rounds: 5,
        producers: 64,
        batch: 1,
        payload: 100,
        before: Duration::from_secs(3),
        after: Duration::from_secs(2),
        restart_delay: Duration::ZERO,
        deployments: vec!["cluster", "sentinel"],
        acks: vec![None, Some(1)],
    };
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let mut it = raw.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"))
            .as_str();
        let num = || -> usize {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{flag} takes a number, not {value}"))
        };
        match flag.as_str() {
            "--rounds" => args.rounds = num(),
            "--producers" => args.producers = num().max(1),
            "--batch" => args.batch = num().max(1),
            "--payload" => args.payload = num(),
            "--before-secs" => args.before = Duration::from_secs(num() as u64),
            "--after-secs" => args.after = Duration::from_secs(num() as u64),
            "--restart-delay-secs" => args.restart_delay = Duration::from_secs(num() as u64),
            "--deployment" => {
                args.deployments = match value {
                    "cluster" => vec!["cluster"],
                    "sentinel" => vec!["sentinel"],
                    "both" => vec!["cluster", "sentinel"],
                    other => panic!("--deployment cluster|sentinel|both, not {other}"),
                }
            }
            "--acks" => {
                args.acks = match value {
                    "off" | "0" => vec![None],
                    "both" => vec![None, Some(1)],
                    n => vec![Some(n.parse().expect("--acks off|N|both"))],
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

enum Deployment {
    Cluster(RedisCluster),
    Sentinel(RedisSentinelSet),
}

/// What the fault saw, timed from the kill.
struct Fault {
    killed_at: Instant,
    promoted_after: Duration,
    restarted_after: Duration,
}

impl Deployment {
    fn start(kind: &str) -> Self {
        match kind {
            "cluster" => Deployment::Cluster(RedisCluster::start()),
            _ => Deployment::Sentinel(RedisSentinelSet::start("jobs")),
        }
    }

    fn url(&self) -> String {
        match self {
            Deployment::Cluster(c) => c.url(),
            Deployment::Sentinel(s) => s.url(),
        }
    }

    /// The master holding the queue's keys now.
    fn master(&self) -> u16 {
        match self {
            Deployment::Cluster(c) => c.node_for_key(&format!("{PREFIX}:{QUEUE}:id")),
            Deployment::Sentinel(s) => s.master_port(),
        }
    }

    /// Every data node (masters and replicas).
    fn data_ports(&self) -> Vec<u16> {
        match self {
            Deployment::Cluster(c) => c.ports(),
            Deployment::Sentinel(s) => s.server_ports(),
        }
    }

    /// SIGKILL the queue's master, wait for a replica to take over, start
    /// the old node again.
    fn fault(&mut self, killed: &OnceLock<Instant>, restart_delay: Duration) -> Fault {
        let key = format!("{PREFIX}:{QUEUE}:id");
        let old = match self {
            Deployment::Cluster(c) => c.kill_master_for(&key),
            Deployment::Sentinel(s) => s.kill_master(),
        };
        let killed_at = *killed.get_or_init(Instant::now);
        match self {
            Deployment::Cluster(c) => {
                c.wait_for_failover(&key, old);
            }
            Deployment::Sentinel(s) => {
                s.wait_for_new_master(old);
            }
        }
        let promoted_after = killed_at.elapsed();
        std::thread::sleep(restart_delay);
        match self {
            Deployment::Cluster(c) => c.restart(old),
            Deployment::Sentinel(s) => s.restart(old),
        }
        Fault {
            killed_at,
            promoted_after,
            restarted_after: killed_at.elapsed(),
        }
    }
}

/// One acknowledged `add_bulk` call.
struct Ack {
    started: Instant,
    finished: Instant,
    ids: Vec<String>,
}

#[derive(Default)]
struct Errors {
    not_replicated: usize,
    other: usize,
    /// Error text (digits dropped, so ports and counts merge) and count.
    kinds: std::collections::BTreeMap<String, usize>,
}

struct Round {
    acked: usize,
    acked_before: usize,
    lost: usize,
    lost_before: usize,
    rate_before: f64,
    p50_ms: f64,
    p99_ms: f64,
    promoted_ms: f64,
    restarted_ms: f64,
    first_add_ms: Option<f64>,
    errors: Errors,
    located: String,
}

async fn round(args: &Args, kind: &str, acks: Option<u32>, n: usize) -> Round {
    let deployment = {
        let kind = kind.to_string();
        tokio::task::spawn_blocking(move || Deployment::start(&kind))
            .await
            .expect("deployment started")
    };
    let mut options = RedisOptions::new(deployment.url()).with_prefix(PREFIX);
    options.command_timeout = Duration::from_secs(5);
    if let Some(r) = acks {
        options = options.with_replica_acks(r, Duration::from_secs(2));
    }
    let conn = Connection::connect(options).await.expect("connect");
    let queue = Queue::new(QUEUE, &conn).await.expect("queue");
    let payload = "x".repeat(args.payload);

    let stop = Arc::new(AtomicBool::new(false));
    let killed: Arc<OnceLock<Instant>> = Arc::default();
    let resumed = Arc::new(AtomicUsize::new(0));
    let errors: Arc<Mutex<Errors>> = Arc::default();
    let mut producers = Vec::new();
    let started = Instant::now();
    for p in 0..args.producers {
        let (queue, stop, killed, resumed, errors, payload, batch) = (
            queue.clone(),
            stop.clone(),
            killed.clone(),
            resumed.clone(),
            errors.clone(),
            payload.clone(),
            args.batch,
        );
        producers.push(tokio::spawn(async move {
            let mut acks: Vec<Ack> = Vec::new();
            let mut next = 0usize;
            'outer: while !stop.load(Ordering::Relaxed) {
                let ids: Vec<String> = (next..next + batch)
                    .map(|i| format!("r{n}-p{p}-{i}"))
                    .collect();
                next += batch;
                // Retry the same ids until acknowledged: safe, the id is the job's.
                loop {
                    let jobs = ids
                        .iter()
                        .map(|id| {
                            NewJob::new(
                                "load",
                                &json!({"id": id, "payload": payload}),
                                JobOptions {
                                    job_id: Some(id.clone()),
                                    ..Default::default()
                                },
                            )
                        })
                        .collect();
                    let t = Instant::now();
                    match queue.add_bulk(jobs).await {
                        Ok(_) => {
                            if killed.get().is_some_and(|k| t >= *k) {
                                resumed.fetch_add(1, Ordering::Relaxed);
                            }
                            acks.push(Ack {
                                started: t,
                                finished: Instant::now(),
                                ids,
                            });
                            break;
                        }
                        Err(e) => {
                            {
                                let mut errors = errors.lock().unwrap();
                                let text: String = e
                                    .to_string()
                                    .chars()
                                    .filter(|c| !c.is_ascii_digit())
                                    .take(90)
                                    .collect();
                                *errors.kinds.entry(text).or_default() += 1;
                                match e {
                                    Error::NotReplicated { .. } => errors.not_replicated += 1,
                                    _ => errors.other += 1,
                                }
                            }
                            if stop.load(Ordering::Relaxed) {
                                break 'outer;
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }
            acks
        }));
    }

    tokio::time::sleep(args.before).await;
    let killed_by = killed.clone();
    let restart_delay = args.restart_delay;
    let (deployment, fault) = tokio::task::spawn_blocking(move || {
        let mut d = deployment;
        let f = d.fault(&killed_by, restart_delay);
        (d, f)
    })
    .await
    .expect("fault ran");
    // The producers go on until `after` past their first add sent after
    // the kill that succeeded (60 s at most).
    let deadline = Instant::now() + Duration::from_secs(60);
    while resumed.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(args.after).await;
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<Ack> = Vec::new();
    for p in producers {
        if let Ok(Ok(acks)) = tokio::time::timeout(Duration::from_secs(30), p).await {
            all.extend(acks);
        }
    }

    let killed_at = fault.killed_at;
    let before: Vec<&Ack> = all.iter().filter(|a| a.finished <= killed_at).collect();
    let acked_before: usize = before.iter().map(|a| a.ids.len()).sum();
    let mut latencies: Vec<f64> = before
        .iter()
        .map(|a| (a.finished - a.started).as_secs_f64() * 1e3)
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |q: f64| -> f64 {
        if latencies.is_empty() {
            0.0
        } else {
            latencies[((latencies.len() - 1) as f64 * q) as usize]
        }
    };
    let first_add_ms = all
        .iter()
        .filter(|a| a.started >= killed_at)
        .map(|a| a.finished)
        .min()
        .map(|t| (t - killed_at).as_secs_f64() * 1e3);

    // Look every acknowledged id up on the master now serving the queue.
    let master = tokio::task::spawn_blocking({
        let d = deployment;
        move || {
            let port = d.master();
            (d, port)
        }
    })
    .await
    .expect("master lookup");
    let (deployment, port) = master;
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("client");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the master");
    let mut lost = 0;
    let mut lost_before = 0;
    for ack in &all {
        let mut pipe = redis::pipe();
        for id in &ack.ids {
            pipe.cmd("EXISTS").arg(format!("{PREFIX}:{QUEUE}:{id}"));
        }
        let found: Vec<bool> = pipe.query_async(&mut con).await.expect("EXISTS");
        let missing = found.iter().filter(|f| !**f).count();
        lost += missing;
        if ack.finished <= killed_at {
            lost_before += missing;
        }
    }
    // Where are the acknowledged jobs? (Only when some are missing.)
    let mut located = String::new();
    if lost > 0 {
        for node in deployment.data_ports() {
            let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{node}")) else {
                continue;
            };
            let Ok(mut con) = client.get_multiplexed_async_connection().await else {
                continue;
            };
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut con)
                .await
                .unwrap_or_default();
            let role = info
                .lines()
                .find_map(|l| l.strip_prefix("role:"))
                .unwrap_or("?")
                .trim()
                .to_string();
            let (mut pre, mut post) = (0, 0);
            for ack in &all {
                let mut pipe = redis::pipe();
                for id in &ack.ids {
                    pipe.cmd("EXISTS").arg(format!("{PREFIX}:{QUEUE}:{id}"));
                }
                let found: Vec<bool> = pipe.query_async(&mut con).await.unwrap_or_default();
                let n = found.iter().filter(|f| **f).count();
                if ack.finished <= killed_at {
                    pre += n;
                } else {
                    post += n;
                }
            }
            if pre + post > 0 || node == port {
                located.push_str(&format!(
                    " [{node} {role}{}: {pre} pre, {post} post]",
                    if node == port { ", looked up" } else { "" }
                ));
            }
        }
    }
    drop(conn);
    drop(deployment);
    let errors = std::mem::take(&mut *errors.lock().unwrap());
    Round {
        acked: all.iter().map(|a| a.ids.len()).sum(),
        acked_before,
        lost,
        lost_before,
        rate_before: acked_before as f64 / (killed_at - started).as_secs_f64(),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        promoted_ms: fault.promoted_after.as_secs_f64() * 1e3,
        restarted_ms: fault.restarted_after.as_secs_f64() * 1e3,
        first_add_ms,
        errors,
        located,
    }
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "failover_loss: {} rounds, {} producers, add_bulk of {} job(s) per call, {} B payload, kill after {:?}, {:?} more after adds resume, old node restarted {:?} after the promotion",
        args.rounds, args.producers, args.batch, args.payload, args.before, args.after, args.restart_delay
    );
    println!(
        "{:<9} {:<5} {:>5} {:>9} {:>10} {:>6} {:>10} {:>10} {:>8} {:>8} {:>10} {:>10} {:>11} {:>8} {:>7}",
        "deploy",
        "acks",
        "round",
        "acked",
        "acked pre",
        "lost",
        "lost pre",
        "adds/s pre",
        "p50 ms",
        "p99 ms",
        "promoted",
        "restarted",
        "first add",
        "notrepl",
        "errors"
    );
    let mut totals = Vec::new();
    for kind in &args.deployments {
        for &acks in &args.acks {
            let label = acks.map_or("off".to_string(), |n| n.to_string());
            let mut sum = (0usize, 0usize, 0.0f64, 0.0f64, 0usize);
            let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
            for n in 0..args.rounds {
                let r = rt.block_on(round(&args, kind, acks, n));
                println!(
                    "{:<9} {:<5} {:>5} {:>9} {:>10} {:>6} {:>10} {:>10.0} {:>8.2} {:>8.2} {:>8.0}ms {:>8.0}ms {:>11} {:>8} {:>7}{}",
                    kind,
                    label,
                    n + 1,
                    r.acked,
                    r.acked_before,
                    r.lost,
                    r.lost_before,
                    r.rate_before,
                    r.p50_ms,
                    r.p99_ms,
                    r.promoted_ms,
                    r.restarted_ms,
                    r.first_add_ms
                        .map_or("never".to_string(), |ms| format!("{ms:.0}ms")),
                    r.errors.not_replicated,
                    r.errors.other,
                    r.located
                );
                for (k, v) in &r.errors.kinds {
                    *kinds.entry(k.clone()).or_default() += v;
                }
                sum.0 += r.acked;
                sum.1 += r.lost;
                sum.2 += r.rate_before;
                sum.3 += r.first_add_ms.unwrap_or(f64::NAN);
                sum.4 += usize::from(r.lost > 0);
            }
            totals.push(format!(
                "{kind:<9} acks {label:<4}: {} acknowledged, {} lost ({:.4}%), rounds with a loss {}/{}, mean adds/s before the fault {:.0}, mean first add after the kill {:.0} ms",
                sum.0,
                sum.1,
                sum.1 as f64 * 100.0 / sum.0.max(1) as f64,
                sum.4,
                args.rounds,
                sum.2 / args.rounds as f64,
                sum.3 / args.rounds as f64
            ));
            for (k, v) in kinds {
                totals.push(format!("    {v:>6} x {k}"));
            }
        }
    }
    println!("\ntotals");
    for t in totals {
        println!("{t}");
    }
}
