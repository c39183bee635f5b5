//! Deduplication from Node producers, processed by Node and by us: a job
//! that owns a window ends it when it finishes, and with keepLastIfActive
//! the latest duplicate added while the owner was active is enqueued when
//! the owner finishes, exactly as with a Node worker.
//!
//! The owner runs for 5 s so that both duplicates (each a Node process
//! start, well under a second) arrive while it is active; with a shorter
//! run the second one could arrive after the window ended, and the test
//! would depend on how fast the machine starts Node.

use std::time::Duration;

use bullmq_wire::{Connection, Worker, WorkerOptions};
use interop_tests::{assert_same_json, behave, cfg, queue_name, run, Lang, Process, RedisServer};
use serde_json::{json, Value};

async fn scenario(server: &RedisServer, lang: Lang) -> (Value, Vec<Value>) {
    let q = queue_name();
    let de = json!({"deduplication": {"id": "d1", "keepLastIfActive": true}});
    let mut events = Process::start(Lang::Node, "events", cfg(server, &q, json!({}))).await;
    let first = run(Lang::Node, "add", cfg(server, &q, json!({"jobs": [{"name": "sleep", "data": {"ms": 5000}, "opts": de}]}))).await;
    assert_eq!(first["ids"][0], "1");
    let mut node_worker = None;
    let mut rust_worker = None;
    match lang {
        Lang::Node => node_worker = Some(Process::start(Lang::Node, "worker", cfg(server, &q, json!({"name": "w1"}))).await),
        _ => {
            let conn = Connection::open(&server.url()).await.unwrap();
            let opts = WorkerOptions { name: Some("w1".into()), ..Default::default() };
            rust_worker = Some(Worker::start(&q, &conn, opts, behave).await.unwrap());
        }
    }
    events.wait_for(Duration::from_secs(30), |v| v["event"] == "active" && v["args"]["jobId"] == "1").await;
    // two duplicates while job 1 runs: the latest one is kept for later
    let mut last = String::new();
    for n in [1, 2] {
        let dup = run(Lang::Node, "add", cfg(server, &q, json!({"jobs": [{"name": "echo", "data": {"dup": n}, "opts": de}]}))).await;
        last = dup["ids"][0].as_str().unwrap().to_string();
    }
    events.wait_count(Duration::from_secs(30), 2, |v| v["event"] == "completed").await;
    if let Some(w) = node_worker {
        w.stop().await;
    }
    if let Some(w) = rust_worker {
        w.close().await;
    }
    let seen = events.stop().await;
    // the job the kept duplicate became when the owner finished
    let requeued = seen
        .iter()
        .find(|e| e["event"] == "completed" && e["args"]["jobId"] != "1")
        .and_then(|e| e["args"]["jobId"].as_str())
        .unwrap_or_default()
        .to_string();
    let inspect = run(Lang::Node, "inspect", cfg(server, &q, json!({"ids": ["1", requeued.clone()]}))).await;
    let raw = run(Lang::Node, "raw", cfg(server, &q, json!({"pattern": format!("bull:{q}:d*")}))).await;
    let per_job: Vec<Value> = seen
        .iter()
        .filter(|e| e.get("event").is_some() && e["event"] != "drained")
        .map(|e| json!({"event": e["event"], "jobId": e["args"]["jobId"], "returnvalue": e["args"]["returnvalue"]}))
        .collect();
    (json!({"last": last, "requeued": requeued, "jobs": inspect["jobs"], "dedupKeys": raw["keys"].as_object().map(|m| m.len())}), per_job)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_last_if_active_requeues_like_node() {
    let server = RedisServer::start();
    let (node, node_events) = scenario(&server, Lang::Node).await;
    let (rust, rust_events) = scenario(&server, Lang::Rust).await;
    // both duplicates came while job 1 was active: each add answered with
    // job 1's id, and the last one ran after it as a job of its own
    assert_eq!(node["last"], "1", "{node:#}");
    let requeued = node["requeued"].as_str().unwrap();
    assert!(!requeued.is_empty(), "{node:#}");
    assert_eq!(node["jobs"][requeued]["state"], "completed", "{node:#}");
    assert_eq!(node["jobs"][requeued]["json"]["returnvalue"], json!({"echo": {"dup": 2}}));
    assert_same_json("jobs after dedup", &node, &rust);
    assert_same_json("events", &json!(node_events), &json!(rust_events));
}
