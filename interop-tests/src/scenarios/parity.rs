//! Scenario 1 of the conformance suite (run by `tests/parity.rs` on one
//! server and by `tests/deployments.rs` on a cluster and a Sentinel set): the same jobs, with every option,
//! run once through a Node worker and once through ours (and produced once
//! by Node and once by us); what Node's `Queue`/`Job` API reads afterwards
//! and the per-job event sequences a Node `QueueEvents` saw must be equal.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{
    assert_same_json, behave, cfg, connect, job_options, queue_name, run, Deployment, Lang, Process,
};
use bullmq_wire::{Queue, Worker, WorkerOptions};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Node,
    Rust,
}

fn scenario() -> Vec<Value> {
    let t = 1_795_791_213_571_i64;
    vec![
        json!({"name": "echo", "data": {"x": 1}}),
        json!({"name": "echo", "data": {"custom": true}, "opts": {"jobId": "custom-1"}}),
        json!({"name": "echo", "data": {"d": 1}, "opts": {"delay": 150}}),
        json!({"name": "echo", "data": {"p": 5}, "opts": {"priority": 5}}),
        json!({"name": "echo", "data": {"l": 1}, "opts": {"lifo": true}}),
        json!({"name": "fail", "data": {"times": 2}, "opts": {"attempts": 3, "backoff": {"type": "fixed", "delay": 30}}}),
        json!({"name": "fail", "data": {"times": 9}, "opts": {"attempts": 2, "backoff": {"type": "exponential", "delay": 20}}}),
        json!({"name": "fail", "data": {"times": 1}, "opts": {"attempts": 2}}),
        json!({"name": "unrecoverable", "data": {}, "opts": {"attempts": 3}}),
        json!({"name": "echo", "data": {"gone": 1}, "opts": {"removeOnComplete": true}}),
        json!({"name": "fail", "data": {"times": 9}, "opts": {"removeOnFail": {"count": 5}}}),
        json!({"name": "log", "data": {}, "opts": {"keepLogs": 1}}),
        json!({"name": "sleep", "data": {"ms": 30, "steps": 3}, "opts": {"timestamp": t}}),
        json!({"name": "nothing", "data": [1, 2, 3]}),
    ]
}

/// Runs the scenario; returns Node's view of every job and the per-job
/// event sequences.
async fn run_scenario(
    server: &dyn Deployment,
    producer: Side,
    consumer: Side,
) -> (Value, BTreeMap<String, Vec<Value>>) {
    let q = queue_name();
    let jobs = scenario();
    let mut events = Process::start(Lang::Node, "events", cfg(server, &q, json!({}))).await;
    let ids: Vec<String> = match producer {
        Side::Node => {
            let out = run(Lang::Node, "add", cfg(server, &q, json!({"jobs": jobs}))).await;
            out["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        }
        Side::Rust => {
            let conn = connect(server).await;
            let queue = Queue::new(&q, &conn).await.unwrap();
            let mut ids = Vec::new();
            for j in &jobs {
                let opts = job_options(j.get("opts").unwrap_or(&json!({})));
                ids.push(
                    queue
                        .add(j["name"].as_str().unwrap(), &j["data"], opts)
                        .await
                        .unwrap(),
                );
            }
            ids
        }
    };
    let finals = |v: &Value| v["event"] == "completed" || v["event"] == "failed";
    let rust_worker;
    let node_worker = match consumer {
        Side::Node => {
            rust_worker = None;
            Some(
                Process::start(
                    Lang::Node,
                    "worker",
                    cfg(server, &q, json!({"name": "w1", "concurrency": 1})),
                )
                .await,
            )
        }
        Side::Rust => {
            let conn = connect(server).await;
            let opts = WorkerOptions {
                name: Some("w1".into()),
                ..Default::default()
            };
            rust_worker = Some(Worker::start(&q, &conn, opts, behave).await.unwrap());
            None
        }
    };
    events
        .wait_count(Duration::from_secs(60), ids.len(), finals)
        .await;
    if let Some(w) = node_worker {
        w.stop().await;
    }
    if let Some(w) = rust_worker {
        w.close().await;
    }
    let inspect = run(Lang::Node, "inspect", cfg(server, &q, json!({"ids": ids}))).await;
    let seen = events.stop().await;
    let mut per_job: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in seen.iter().filter(|e| e.get("event").is_some()) {
        let args = &e["args"];
        let Some(id) = args.get("jobId").and_then(Value::as_str) else {
            continue;
        };
        let mut kept = json!({"event": e["event"]});
        for k in [
            "prev",
            "returnvalue",
            "failedReason",
            "attemptsMade",
            "data",
            "name",
        ] {
            if let Some(v) = args.get(k) {
                kept[k] = v.clone();
            }
        }
        per_job.entry(id.to_string()).or_default().push(kept);
    }
    (inspect["jobs"].clone(), per_job)
}

/// Node produces; Node's worker and ours must leave the same jobs and events.
pub async fn rust_worker_matches_node_worker(server: &dyn Deployment) {
    let (node_jobs, node_events) = run_scenario(server, Side::Node, Side::Node).await;
    let (rust_jobs, rust_events) = run_scenario(server, Side::Node, Side::Rust).await;
    assert_same_json("jobs", &node_jobs, &rust_jobs);
    assert_eq!(node_events.len(), scenario().len());
    for (id, seq) in &node_events {
        assert_same_json(
            &format!("events of job {id}"),
            &json!(seq),
            &json!(rust_events.get(id)),
        );
    }
}

/// Node's worker serves; Node's producer and ours must leave the same.
pub async fn rust_producer_matches_node_producer(server: &dyn Deployment) {
    let (node_jobs, node_events) = run_scenario(server, Side::Node, Side::Node).await;
    let (rust_jobs, rust_events) = run_scenario(server, Side::Rust, Side::Node).await;
    assert_same_json("jobs", &node_jobs, &rust_jobs);
    for (id, seq) in &node_events {
        assert_same_json(
            &format!("events of job {id}"),
            &json!(seq),
            &json!(rust_events.get(id)),
        );
    }
}
