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

/// Adds jobs through Node's `Queue.add` or ours; returns their ids.
async fn add(server: &RedisServer, q: &str, producer: Lang, jobs: Value) -> Vec<String> {
    match producer {
        Lang::Node => {
            let out = run(Lang::Node, "add", cfg(server, q, json!({"jobs": jobs}))).await;
            out["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        }
        _ => {
            let conn = Connection::open(&server.url()).await.unwrap();
            let queue = bullmq_wire::Queue::new(q, &conn).await.unwrap();
            let mut ids = Vec::new();
            for j in jobs.as_array().unwrap() {
                let opts = interop_tests::job_options(&j["opts"]);
                ids.push(
                    queue
                        .add(j["name"].as_str().unwrap(), &j["data"], opts)
                        .await
                        .unwrap(),
                );
            }
            ids
        }
    }
}

async fn scenario(server: &RedisServer, lang: Lang) -> (Value, Vec<Value>) {
    scenario_from(server, Lang::Node, lang).await
}

async fn scenario_from(server: &RedisServer, producer: Lang, lang: Lang) -> (Value, Vec<Value>) {
    let q = queue_name();
    let de = json!({"deduplication": {"id": "d1", "keepLastIfActive": true}});
    let mut events = Process::start(Lang::Node, "events", cfg(server, &q, json!({}))).await;
    let first = add(
        server,
        &q,
        producer,
        json!([{"name": "sleep", "data": {"ms": 5000}, "opts": de}]),
    )
    .await;
    assert_eq!(first[0], "1");
    let mut node_worker = None;
    let mut rust_worker = None;
    match lang {
        Lang::Node => {
            node_worker = Some(
                Process::start(Lang::Node, "worker", cfg(server, &q, json!({"name": "w1"}))).await,
            )
        }
        _ => {
            let conn = Connection::open(&server.url()).await.unwrap();
            let opts = WorkerOptions {
                name: Some("w1".into()),
                ..Default::default()
            };
            rust_worker = Some(Worker::start(&q, &conn, opts, behave).await.unwrap());
        }
    }
    events
        .wait_for(Duration::from_secs(30), |v| {
            v["event"] == "active" && v["args"]["jobId"] == "1"
        })
        .await;
    // two duplicates while job 1 runs: the latest one is kept for later
    let mut last = String::new();
    for n in [1, 2] {
        let dup = add(
            server,
            &q,
            producer,
            json!([{"name": "echo", "data": {"dup": n}, "opts": de}]),
        )
        .await;
        last = dup[0].clone();
    }
    events
        .wait_count(Duration::from_secs(30), 2, |v| v["event"] == "completed")
        .await;
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
    let inspect = run(
        Lang::Node,
        "inspect",
        cfg(server, &q, json!({"ids": ["1", requeued.clone()]})),
    )
    .await;
    let raw = run(
        Lang::Node,
        "raw",
        cfg(server, &q, json!({"pattern": format!("bull:{q}:d*")})),
    )
    .await;
    let per_job: Vec<Value> = seen
        .iter()
        .filter(|e| e.get("event").is_some() && e["event"] != "drained")
        .map(|e| json!({"event": e["event"], "jobId": e["args"]["jobId"], "returnvalue": e["args"]["returnvalue"]}))
        .collect();
    (
        json!({"last": last, "requeued": requeued, "jobs": inspect["jobs"], "dedupKeys": raw["keys"].as_object().map(|m| m.len())}),
        per_job,
    )
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
    assert_eq!(
        node["jobs"][requeued]["json"]["returnvalue"],
        json!({"echo": {"dup": 2}})
    );
    assert_same_json("jobs after dedup", &node, &rust);
    assert_same_json("events", &json!(node_events), &json!(rust_events));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_last_if_active_from_a_rust_producer() {
    let server = RedisServer::start();
    let (node, node_events) = scenario_from(&server, Lang::Node, Lang::Node).await;
    let (rust, rust_events) = scenario_from(&server, Lang::Rust, Lang::Node).await;
    assert_same_json("jobs after dedup", &node, &rust);
    assert_same_json("events", &json!(node_events), &json!(rust_events));
}

/// Every deduplication mode, adds only: what the adds answer, and the
/// queue's keys and events afterwards (times taken out).
async fn modes(server: &RedisServer, producer: Lang) -> Value {
    let mut out = serde_json::Map::new();
    let cases = [
        ("plain", json!({"id": "a"}), [0, 0, 0]),
        ("ttl", json!({"id": "b", "ttl": 60_000}), [0, 0, 0]),
        (
            "extend",
            json!({"id": "c", "ttl": 60_000, "extend": true}),
            [0, 0, 0],
        ),
        (
            "replace",
            json!({"id": "d", "ttl": 60_000, "replace": true}),
            [5_000, 6_000, 7_000],
        ),
        (
            "reschedule",
            json!({"id": "e", "reschedule": true}),
            [5_000, 9_000, 3_000],
        ),
        (
            "replace-ready",
            json!({"id": "f", "replace": true}),
            [0, 0, 0],
        ),
    ];
    for (name, de, delays) in cases {
        let q = queue_name();
        let jobs: Vec<Value> = delays
            .iter()
            .enumerate()
            .map(|(i, d)| json!({"name": "echo", "data": {"n": i}, "opts": {"deduplication": de, "delay": d}}))
            .collect();
        let mut ids = Vec::new();
        for j in jobs {
            ids.extend(add(server, &q, producer, json!([j])).await);
        }
        let raw = run(Lang::Node, "raw", cfg(server, &q, json!({}))).await;
        let prefix = format!("bull:{q}:");
        let mut keys = serde_json::Map::new();
        for (k, v) in raw["keys"].as_object().unwrap() {
            let short = k.strip_prefix(&prefix).unwrap_or(k).to_string();
            let mut value = v["value"].clone();
            match short.as_str() {
                "events" => {
                    value = json!(value
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| {
                            let mut f = e[1].clone();
                            if f["event"] == "delayed" {
                                f["delay"] = json!("<due>");
                            }
                            f
                        })
                        .collect::<Vec<_>>())
                }
                "delayed" | "marker" => {
                    value = json!(value
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| m[0].clone())
                        .collect::<Vec<_>>())
                }
                _ => {}
            }
            if let Some(h) = value.as_object_mut() {
                h.remove("timestamp");
                if let Some(o) = h.get("opts").and_then(Value::as_str) {
                    let parsed: Value = serde_json::from_str(o).unwrap();
                    h.insert("opts".into(), parsed);
                }
            }
            keys.insert(
                short,
                json!({"value": value, "expires": v.get("pttl").is_some()}),
            );
        }
        out.insert(name.to_string(), json!({"ids": ids, "keys": keys}));
    }
    Value::Object(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_adds_deduplicate_as_node_adds() {
    let server = RedisServer::start();
    let node = modes(&server, Lang::Node).await;
    let rust = modes(&server, Lang::Rust).await;
    assert_same_json("deduplication modes", &node, &rust);
    // and what they are, in BullMQ's words
    assert_eq!(node["plain"]["ids"], json!(["1", "1", "1"]));
    assert_eq!(
        node["replace"]["ids"],
        json!(["1", "2", "3"]),
        "{:#}",
        node["replace"]
    );
    assert_eq!(
        node["reschedule"]["keys"]["1"]["value"]["delay"], "3000",
        "{:#}",
        node["reschedule"]
    );
}
