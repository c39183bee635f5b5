//! Scenario 4: priority, LIFO/FIFO and delayed due-order. The same input is
//! consumed by a Node worker and by ours (concurrency 1); the order in which
//! jobs start must be identical.

use std::time::Duration;

use interop_tests::{cfg, queue_name, run, Lang, Process, RedisServer};
use serde_json::{json, Value};

/// The jobs, in the order they are added. Delayed jobs carry a creation
/// time in the past, so their due times (timestamp + delay) are fixed by the
/// input alone, not by how fast the adds happen, and all are due at once.
fn input() -> Vec<Value> {
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 60_000;
    let mut jobs = Vec::new();
    let mut add = |tag: &str, opts: Value| {
        jobs.push(json!({"name": "count", "data": {"tag": tag}, "opts": opts}))
    };
    add("plain-1", json!({}));
    add("prio-3", json!({"priority": 3}));
    add("lifo-1", json!({"lifo": true}));
    add("delay-60", json!({"delay": 60, "timestamp": base}));
    add("prio-1a", json!({"priority": 1}));
    add("plain-2", json!({}));
    add("delay-20", json!({"delay": 20, "timestamp": base}));
    add("prio-1b", json!({"priority": 1}));
    add("lifo-2", json!({"lifo": true}));
    add(
        "delay-40-prio-2",
        json!({"delay": 40, "priority": 2, "timestamp": base}),
    );
    add("delay-20-again", json!({"delay": 20, "timestamp": base}));
    add("prio-max", json!({"priority": 2_097_151}));
    add("plain-3", json!({}));
    jobs
}

async fn start_order(server: &RedisServer, worker: Lang) -> Vec<String> {
    let q = queue_name();
    let jobs = input();
    let out = run(Lang::Node, "add", cfg(server, &q, json!({"jobs": jobs}))).await;
    let ids: Vec<String> = out["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut w = Process::start(worker, "worker", cfg(server, &q, json!({"concurrency": 1}))).await;
    w.wait_count(Duration::from_secs(30), ids.len(), |v| {
        v["event"] == "start"
    })
    .await;
    let seen = w.stop().await;
    let tag = |id: &str| {
        jobs[ids.iter().position(|i| i == id).unwrap()]["data"]["tag"]
            .as_str()
            .unwrap()
            .to_string()
    };
    seen.iter()
        .filter(|v| v["event"] == "start")
        .map(|v| tag(v["id"].as_str().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_worker_takes_jobs_in_node_order() {
    let server = RedisServer::start();
    let node = start_order(&server, Lang::Node).await;
    let rust = start_order(&server, Lang::Rust).await;
    assert_eq!(node.len(), input().len());
    assert_eq!(node, rust, "start order differs");
}

/// Job tags in the order their `active` events were written.
async fn active_order(
    server: &RedisServer,
    q: &str,
    ids: &[String],
    jobs: &[Value],
) -> Vec<String> {
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let entries: Vec<(String, std::collections::HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(format!("bull:{q}:events"))
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .unwrap();
    entries
        .into_iter()
        .filter(|(_, f)| f.get("event").map(String::as_str) == Some("active"))
        .map(|(_, f)| {
            let id = &f["jobId"];
            jobs[ids.iter().position(|i| i == id).unwrap()]["data"]["tag"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// With free slots our worker takes several jobs per call (in bulk); they
/// must still become active in the order one-at-a-time fetching gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_fetching_keeps_the_order() {
    let server = RedisServer::start();
    let node = start_order(&server, Lang::Node).await;
    let q = queue_name();
    let jobs = input();
    let out = run(Lang::Node, "add", cfg(&server, &q, json!({"jobs": jobs}))).await;
    let ids: Vec<String> = out["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut w = Process::start(
        Lang::Rust,
        "worker",
        cfg(&server, &q, json!({"concurrency": 5})),
    )
    .await;
    w.wait_count(Duration::from_secs(30), ids.len(), |v| {
        v["event"] == "completed"
    })
    .await;
    w.stop().await;
    assert_eq!(
        node,
        active_order(&server, &q, &ids, &jobs).await,
        "active order differs"
    );
}
