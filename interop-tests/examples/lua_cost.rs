//! What our Lua scripts cost Redis per job, by scenario, from `INFO
//! commandstats` (the time Redis spent inside EVALSHA, and the commands the
//! scripts called) and `INFO cpu`.
//!
//! `cargo run --release -p interop-tests --example lua_cost -- [jobs] [scenario ...]`
//! (default 20000 jobs; scenarios `gwadd gwwork gw`):
//! - `gwadd`: the gateway's adds: batches of 10, custom ids, retention
//!   `removeOnComplete`/`removeOnFail` `{age: 3600}`, 8 batches in flight;
//! - `gwwork`: a worker (concurrency 50, a small JSON result) processing
//!   jobs added as in `gwadd` beforehand (not counted);
//! - `gw`: both at once, the gateway's steady state.
//!
//! `LUA_COST_PRODUCERS` (8) and `LUA_COST_BATCH` (10) change the adds in
//! flight and their batch size (50 and 1: many sockets, each call alone),
//! `LUA_COST_CONCURRENCY` (50) the worker's concurrency (1: one job per
//! fetch and finish, what a call costs when nothing shares it).
//!
//! `LUA_COST_PUBLISH=job` makes the worker publish each end on
//! `job:{jobId}` (`publish_results`, as the `worker` binary does);
//! `LUA_COST_PUBLISH=reply` also gives every job a reply channel
//! (`reply_to`, as a gateway in `--notify published` does).
//!
//! `LUA_COST_URL=redis://...` uses that server instead of starting one (for
//! `valgrind --tool=callgrind redis-server`: the stats are reset before
//! each scenario, so the server must be ours alone).

use std::time::{Duration, Instant};

use bullmq_wire::{Connection, JobOptions, KeepJobs, NewJob, Queue, Worker, WorkerOptions};
use interop_tests::RedisServer;
use serde_json::json;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn options(id: &str) -> JobOptions {
    let keep = || KeepJobs::Policy {
        age: Some(Duration::from_secs(3600)),
        count: None,
        limit: None,
    };
    let reply = std::env::var("LUA_COST_PUBLISH").is_ok_and(|p| p == "reply");
    JobOptions {
        job_id: Some(id.to_string()),
        reply_to: reply.then(|| "bullmq-wire:gateway:lua-cost".to_string()),
        remove_on_complete: Some(keep()),
        remove_on_fail: Some(keep()),
        ..Default::default()
    }
}

async fn produce(conn: &Connection, queue: &str, count: usize) {
    let q = Queue::new(queue, conn).await.unwrap();
    let (producers, batch) = (
        env_or("LUA_COST_PRODUCERS", 8),
        env_or("LUA_COST_BATCH", 10),
    );
    let per = count.div_ceil(producers);
    let tasks = (0..producers).map(|p| {
        let q = q.clone();
        async move {
            let end = ((p + 1) * per).min(count);
            for start in (p * per..end).step_by(batch) {
                let jobs = (start..(start + batch).min(end))
                    .map(|i| {
                        let id = format!("svc.0123456789abcdef0123.{}", uuid::Uuid::new_v4());
                        let data = json!({"params": {"index": i, "text": "hello"}});
                        NewJob::new("svc.method", &data, options(&id))
                    })
                    .collect();
                q.add_bulk(jobs).await.unwrap();
            }
        }
    });
    futures::future::join_all(tasks).await;
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

async fn start_worker(conn: &Connection, queue: &str) -> Worker {
    let opts = WorkerOptions {
        concurrency: env_or("LUA_COST_CONCURRENCY", 50),
        publish_results: std::env::var("LUA_COST_PUBLISH").is_ok(),
        ..Default::default()
    };
    Worker::start(queue, conn, opts, |_job| async {
        Ok(json!({"ok": true, "result": {"value": 42}}))
    })
    .await
    .unwrap()
}

fn redis_cmd(url: &str, args: &[&str]) -> String {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let v: redis::Value = cmd.query(&mut con).unwrap();
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        redis::Value::VerbatimString { text, .. } => text,
        _ => String::new(),
    }
}

/// (redis cpu seconds, [(command, calls, usec)])
fn stats(url: &str) -> (f64, Vec<(String, f64, f64)>) {
    let info = redis_cmd(url, &["INFO", "all"]);
    let mut cpu = 0.0;
    let mut cmds = Vec::new();
    for line in info.lines() {
        if let Some(v) = line
            .strip_prefix("used_cpu_sys:")
            .or_else(|| line.strip_prefix("used_cpu_user:"))
        {
            cpu += v.trim().parse::<f64>().unwrap_or(0.0);
        }
        if let Some(rest) = line.strip_prefix("cmdstat_") {
            let (name, rest) = rest.split_once(':').unwrap();
            let field = |f: &str| -> f64 {
                rest.split(&format!("{f}="))
                    .nth(1)
                    .and_then(|r| r.split(',').next())
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0.0)
            };
            cmds.push((name.to_string(), field("calls"), field("usec")));
        }
    }
    (cpu, cmds)
}

fn report(scenario: &str, jobs: usize, secs: f64, cpu: f64, cmds: &[(String, f64, f64)]) {
    let n = jobs as f64;
    let (scripts, script_us) = cmds
        .iter()
        .filter(|c| c.0 == "evalsha" || c.0 == "eval")
        .fold((0.0, 0.0), |a, c| (a.0 + c.1, a.1 + c.2));
    let inner_us: f64 = cmds
        .iter()
        .filter(|c| {
            !matches!(
                c.0.as_str(),
                "evalsha" | "eval" | "info" | "zcard" | "config"
            )
        })
        .filter(|c| !c.0.starts_with("bzpop") && !c.0.starts_with("client"))
        .map(|c| c.2)
        .sum();
    println!(
        "{scenario:<7} {:>8.0} jobs/s  redis cpu {:>6.1} us/job  scripts {:>5.3}/job {:>6.1} us/job (in commands {:>5.1}, Lua {:>5.1})",
        n / secs,
        cpu * 1e6 / n,
        scripts / n,
        script_us / n,
        inner_us / n,
        (script_us - inner_us) / n
    );
    let mut inner: Vec<_> = cmds
        .iter()
        .filter(|c| !matches!(c.0.as_str(), "evalsha" | "eval" | "info" | "config"))
        .collect();
    inner.sort_by(|a, b| b.1.total_cmp(&a.1));
    let line: Vec<String> = inner
        .iter()
        .map(|c| format!("{} {:.2}", c.0, c.1 / n))
        .collect();
    println!("        calls/job: {}", line.join(", "));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let jobs: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let mut scenarios: Vec<String> = args.iter().skip(2).cloned().collect();
    if scenarios.is_empty() {
        scenarios = ["gwadd", "gwwork", "gw"].map(String::from).to_vec();
    }
    let own = std::env::var("LUA_COST_URL")
        .is_err()
        .then(RedisServer::start);
    let url = std::env::var("LUA_COST_URL").unwrap_or_else(|_| own.as_ref().unwrap().url());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = Connection::open(&url).await.unwrap();
        // scripts loaded, connections warm (LUA_COST_WARM=0: no warm-up,
        // for instruction counts where the warm-up would be counted)
        if std::env::var("LUA_COST_WARM").as_deref() != Ok("0") {
            let warm = start_worker(&conn, "warm").await;
            produce(&conn, "warm", 100).await;
            wait_completed(&url, "warm", 100).await;
            warm.close().await;
        }
        for scenario in &scenarios {
            let queue = format!("cost-{scenario}");
            if scenario == "gwwork" {
                produce(&conn, &queue, jobs).await;
            }
            redis_cmd(&url, &["CONFIG", "RESETSTAT"]);
            let (cpu0, _) = stats(&url);
            let t = Instant::now();
            match scenario.as_str() {
                "gwadd" => produce(&conn, &queue, jobs).await,
                "gwwork" => {
                    let w = start_worker(&conn, &queue).await;
                    wait_completed(&url, &queue, jobs).await;
                    w.close().await;
                }
                "gw" => {
                    let w = start_worker(&conn, &queue).await;
                    produce(&conn, &queue, jobs).await;
                    wait_completed(&url, &queue, jobs).await;
                    w.close().await;
                }
                other => panic!("unknown scenario {other}"),
            }
            let secs = t.elapsed().as_secs_f64();
            let (cpu1, cmds) = stats(&url);
            report(scenario, jobs, secs, cpu1 - cpu0, &cmds);
            redis_cmd(&url, &["FLUSHALL"]);
        }
    });
}
