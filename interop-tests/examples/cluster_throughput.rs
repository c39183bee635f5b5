//! Throughput of queues spread over 1, 2 or 3 masters of a Redis Cluster:
//! a measurement that prints numbers, not a test.
//!
//! `cargo run --release -p interop-tests --example cluster_throughput -- \
//!     [--jobs 30000] [--rounds 3] [--concurrency 50] [--producers 4]`
//!
//! One 6-node `RedisCluster` (3 masters, 3 replicas). Queue names carry
//! their own hash tag (`{q7}`), picked with `node_for_key` so that each
//! lands on the master wanted. Each configuration runs `--jobs` jobs in
//! total, split evenly over its queues: first an add phase (`--producers`
//! tasks per queue, `add_bulk` of 50), then a process phase (one `Worker`
//! per queue, `--concurrency` each, a handler that returns at once; the
//! clock stops when every queue's `completed` set holds its jobs). Printed:
//! jobs/s per phase (median of the rounds), Redis CPU per job on each master
//! (`used_cpu_user + used_cpu_sys` of `INFO cpu`, before and after; the
//! replicas' CPU is printed as a sum) and this process's CPU per job
//! (`/proc/self/stat`). Client, masters and replicas share the machine's
//! cores, so more masters only help while a core is idle.

use std::time::{Duration, Instant};

use bullmq_wire::testing::RedisCluster;
use bullmq_wire::{Connection, JobOptions, NewJob, Queue, RedisOptions, Worker, WorkerOptions};
use serde_json::json;

struct Args {
    jobs: usize,
    rounds: usize,
    concurrency: usize,
    producers: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        jobs: 30_000,
        rounds: 3,
        concurrency: 50,
        producers: 4,
    };
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let mut it = raw.iter();
    while let Some(flag) = it.next() {
        let value: usize = it
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{flag} takes a number"));
        match flag.as_str() {
            "--jobs" => args.jobs = value,
            "--rounds" => args.rounds = value.max(1),
            "--concurrency" => args.concurrency = value.max(1),
            "--producers" => args.producers = value.max(1),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// CPU seconds of the redis-server on `port`, from `INFO cpu`.
fn redis_cpu(port: u16) -> f64 {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("client");
    let mut con = client.get_connection().expect("connect to a node");
    let info: String = redis::cmd("INFO").arg("cpu").query(&mut con).expect("INFO");
    info.lines()
        .filter_map(|l| {
            l.strip_prefix("used_cpu_user:")
                .or_else(|| l.strip_prefix("used_cpu_sys:"))
        })
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

/// user + system CPU seconds of this process.
fn own_cpu() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

fn flush_masters(masters: &[u16]) {
    for port in masters {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("client");
        let mut con = client.get_connection().expect("connect to a master");
        let _: () = redis::cmd("FLUSHALL").query(&mut con).expect("FLUSHALL");
    }
}

/// CPU seconds of every node: (port, seconds).
fn cpu_all(ports: &[u16]) -> Vec<f64> {
    ports.iter().map(|p| redis_cpu(*p)).collect()
}

/// What one phase cost: jobs/s, Redis CPU us/job per node, client us/job.
struct Phase {
    rate: f64,
    node_us: Vec<f64>,
    client_us: f64,
}

async fn measure<F: std::future::Future<Output = ()>>(
    ports: &[u16],
    jobs: usize,
    work: F,
) -> Phase {
    let before = cpu_all(ports);
    let own = own_cpu();
    let t = Instant::now();
    work.await;
    let secs = t.elapsed().as_secs_f64();
    let client_us = (own_cpu() - own) * 1e6 / jobs as f64;
    let after = cpu_all(ports);
    Phase {
        rate: jobs as f64 / secs,
        node_us: before
            .iter()
            .zip(&after)
            .map(|(b, a)| (a - b) * 1e6 / jobs as f64)
            .collect(),
        client_us,
    }
}

async fn add_phase(conn: &Connection, queues: &[String], per_queue: usize, producers: usize) {
    let mut tasks = Vec::new();
    for name in queues {
        let queue = Queue::new(name, conn).await.expect("queue");
        for p in 0..producers {
            let queue = queue.clone();
            let share: Vec<usize> = (0..per_queue).filter(|i| i % producers == p).collect();
            tasks.push(tokio::spawn(async move {
                for chunk in share.chunks(50) {
                    let jobs = chunk
                        .iter()
                        .map(|i| {
                            NewJob::new(
                                "bench",
                                &json!({"index": i, "payload": "x".repeat(100)}),
                                JobOptions::default(),
                            )
                        })
                        .collect();
                    queue.add_bulk(jobs).await.expect("add_bulk");
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("producer");
    }
}

async fn process_phase(
    conn: &Connection,
    queues: &[(String, u16)],
    per_queue: usize,
    concurrency: usize,
) {
    let mut workers = Vec::new();
    for (name, _) in queues {
        let opts = WorkerOptions {
            concurrency,
            ..Default::default()
        };
        workers.push(
            Worker::start(name, conn, opts, |_job| async { Ok(json!({"ok": true})) })
                .await
                .expect("worker"),
        );
    }
    for (name, port) in queues {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("client");
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the queue's master");
        loop {
            let done: usize = redis::cmd("ZCARD")
                .arg(format!("bull:{name}:completed"))
                .query_async(&mut con)
                .await
                .expect("ZCARD");
            if done >= per_queue {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    for w in workers {
        w.close().await;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args = parse_args();
    let cluster = RedisCluster::start();
    let masters = cluster.masters();
    let ports = cluster.ports();
    // Queue names on each master: {q0}, {q1}, ... until each has three.
    let mut on: Vec<Vec<String>> = vec![Vec::new(); masters.len()];
    let mut i = 0;
    while on.iter().any(|v| v.len() < 3) {
        let name = format!("{{q{i}}}");
        i += 1;
        let port = cluster.node_for_key(&format!("bull:{name}:id"));
        if let Some(m) = masters.iter().position(|p| *p == port) {
            if on[m].len() < 3 {
                on[m].push(name);
            }
        }
    }
    let (a, b, c) = (&on[0], &on[1], &on[2]);
    let configs: Vec<(&str, Vec<(String, u16)>)> = vec![
        ("1 queue, 1 master", vec![(a[0].clone(), masters[0])]),
        (
            "2 queues, 1 master",
            vec![(a[0].clone(), masters[0]), (a[1].clone(), masters[0])],
        ),
        (
            "2 queues, 2 masters",
            vec![(a[0].clone(), masters[0]), (b[0].clone(), masters[1])],
        ),
        (
            "3 queues, 1 master",
            vec![
                (a[0].clone(), masters[0]),
                (a[1].clone(), masters[0]),
                (a[2].clone(), masters[0]),
            ],
        ),
        (
            "3 queues, 3 masters",
            vec![
                (a[0].clone(), masters[0]),
                (b[0].clone(), masters[1]),
                (c[0].clone(), masters[2]),
            ],
        ),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let conn = rt
        .block_on(Connection::connect(RedisOptions::new(cluster.url())))
        .expect("connect to the cluster");
    println!(
        "cluster_throughput: {} jobs per run ({} producers per queue, add_bulk of 50; one Worker per queue, concurrency {}), {} rounds, {} cores",
        args.jobs,
        args.producers,
        args.concurrency,
        args.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("masters: {masters:?} (M1, M2, M3); redis cpu = us of CPU per job on each master, replicas summed; client = this process, us per job");
    println!(
        "{:<22} {:<8} {:>9} {:>8} {:>8} {:>8} {:>9} {:>8}",
        "config", "phase", "jobs/s", "M1 us", "M2 us", "M3 us", "replicas", "client"
    );
    for (label, queues) in &configs {
        let names: Vec<String> = queues.iter().map(|(n, _)| n.clone()).collect();
        let per_queue = args.jobs / queues.len();
        let total = per_queue * queues.len();
        let mut add: Vec<Phase> = Vec::new();
        let mut process: Vec<Phase> = Vec::new();
        for _ in 0..args.rounds {
            flush_masters(&masters);
            add.push(rt.block_on(measure(
                &ports,
                total,
                add_phase(&conn, &names, per_queue, args.producers),
            )));
            process.push(rt.block_on(measure(
                &ports,
                total,
                process_phase(&conn, queues, per_queue, args.concurrency),
            )));
        }
        for (phase, runs) in [("add", add), ("process", process)] {
            let rate = median(runs.iter().map(|r| r.rate).collect());
            let n = runs.len() as f64;
            let mean = |port: u16| -> f64 {
                let idx = ports.iter().position(|p| *p == port).unwrap_or(0);
                runs.iter().map(|r| r.node_us[idx]).sum::<f64>() / n
            };
            let replicas: f64 = ports
                .iter()
                .filter(|p| !masters.contains(p))
                .map(|p| mean(*p))
                .sum();
            let client = runs.iter().map(|r| r.client_us).sum::<f64>() / n;
            println!(
                "{:<22} {:<8} {:>9.0} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>8.1}",
                label,
                phase,
                rate,
                mean(masters[0]),
                mean(masters[1]),
                mean(masters[2]),
                replicas,
                client
            );
        }
    }
    flush_masters(&masters);
}
