//! Flows made by Node's FlowProducer, processed by Node workers and by ours:
//! a parent runs once its children complete and reads their values; a child
//! failing with failParentOnFailure fails the parent; continueParentOnFailure
//! and ignoreDependencyOnFailure release it. What Node reads afterwards must
//! be the same whichever language ran the jobs.

use std::time::Duration;

use bullmq_wire::{Connection, Worker, WorkerOptions};
use interop_tests::{behave, cfg, queue_name, run, Lang, Process, RedisServer};
use serde_json::{json, Value};

/// Child options for each case; children are `echo` jobs plus one failing
/// `unrecoverable` child carrying the policy.
fn flow(case: &str, parent_q: &str, child_q: &str) -> Value {
    let failing = match case {
        "ok" => json!({"name": "echo", "queueName": child_q, "data": {"c": 3}}),
        "fpof" => json!({"name": "unrecoverable", "queueName": child_q, "data": {}, "opts": {"failParentOnFailure": true}}),
        "cpof" => json!({"name": "unrecoverable", "queueName": child_q, "data": {}, "opts": {"continueParentOnFailure": true}}),
        "idof" => json!({"name": "unrecoverable", "queueName": child_q, "data": {}, "opts": {"ignoreDependencyOnFailure": true}}),
        other => panic!("unknown case {other}"),
    };
    json!({
        "name": "echo", "queueName": parent_q, "data": {"parent": true},
        "children": [
            {"name": "echo", "queueName": child_q, "data": {"c": 1}},
            {"name": "echo", "queueName": child_q, "data": {"c": 2}},
            failing,
        ]
    })
}

/// What Node reads of the parent once it is done, with queue names and
/// generated ids taken out.
async fn run_case(server: &RedisServer, case: &str, lang: Lang) -> Value {
    let (pq, cq) = (queue_name(), queue_name());
    let tree = run(Lang::Node, "flow", cfg(server, &pq, json!({"flow": flow(case, &pq, &cq)}))).await;
    let parent_id = tree["tree"]["id"].as_str().unwrap().to_string();
    let mut events = Process::start(Lang::Node, "events", cfg(server, &pq, json!({"lastEventId": "0"}))).await;
    let mut node_workers = Vec::new();
    let mut rust_workers = Vec::new();
    for q in [&pq, &cq] {
        match lang {
            Lang::Node => node_workers.push(Process::start(Lang::Node, "worker", cfg(server, q, json!({"concurrency": 3}))).await),
            _ => {
                let conn = Connection::open(&server.url()).await.unwrap();
                let opts = WorkerOptions { concurrency: 3, ..Default::default() };
                rust_workers.push(Worker::start(q, &conn, opts, behave).await.unwrap());
            }
        }
    }
    let pid = parent_id.clone();
    events
        .wait_for(Duration::from_secs(30), move |v| {
            (v["event"] == "completed" || v["event"] == "failed") && v["args"]["jobId"] == pid.as_str()
        })
        .await;
    for w in node_workers {
        w.stop().await;
    }
    for w in rust_workers {
        w.close().await;
    }
    events.stop().await;
    let out = run(Lang::Node, "parent", cfg(server, &pq, json!({"id": parent_id}))).await;
    let text = out.to_string().replace(&format!("bull:{cq}:"), "bull:<children>:").replace(&pq, "<parent>");
    let mut v: Value = serde_json::from_str(&text).unwrap();
    // child ids are uuids: keep the values, sorted
    for field in ["childrenValues", "ignoredFailures"] {
        let mut vals: Vec<String> = v[field].as_object().map(|m| m.values().map(|x| x.to_string()).collect()).unwrap_or_default();
        vals.sort();
        v[field] = json!(vals);
    }
    if let Some(reason) = v["job"]["failedReason"].as_str() {
        let generic = reason.split("bull:<children>:").next().unwrap_or("").to_string() + "bull:<children>:<id> failed";
        v["job"]["failedReason"] = json!(generic);
    }
    v["job"]["id"] = json!("<parent id>");
    v["job"]["stacktrace"] = json!(v["job"]["stacktrace"].as_array().map(|a| a.len()));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_run_the_same_on_rust_workers() {
    let server = RedisServer::start();
    for case in ["ok", "fpof", "cpof", "idof"] {
        let node = run_case(&server, case, Lang::Node).await;
        let rust = run_case(&server, case, Lang::Rust).await;
        assert_eq!(node, rust, "flow case {case}: node {node:#}\nrust {rust:#}");
        match case {
            "fpof" => assert_eq!(node["state"], "failed", "{node:#}"),
            _ => assert_eq!(node["state"], "completed", "{node:#}"),
        }
    }
}
