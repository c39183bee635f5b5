//! Scenario 9: Python and Rust. Jobs a Python producer adds run on our
//! worker exactly as they run on a Node worker, and jobs we add run on a
//! Python worker exactly as Node-added jobs do: plain, delayed, prioritized,
//! retried with fixed and exponential backoff, failing for good and
//! unrecoverable jobs end in the expected state, with the expected return
//! value or failedReason, as Node reads them. Python's documented quirks
//! show up identically on both sides: jobs added from Python store
//! `opts.delay: 0`, and a Python worker leaves no `processedBy`.

use std::time::Duration;

use bullmq_wire::{Connection, Queue, Worker, WorkerOptions};
use interop_tests::{
    assert_same_json, behave, cfg, job_options, queue_name, run, Lang, Process, RedisServer,
};
use serde_json::{json, Value};

/// Each job and how it must end: state, returnvalue, failedReason,
/// attemptsMade, number of stack traces.
fn scenario() -> Vec<(Value, Value)> {
    let done = |rv: Value, atm: i64| json!({"state": "completed", "returnvalue": rv, "failedReason": null, "attemptsMade": atm, "stacktraceLength": 0});
    vec![
        (
            json!({"name": "echo", "data": {"x": 1}}),
            done(json!({"echo": {"x": 1}}), 1),
        ),
        (
            json!({"name": "echo", "data": {"d": 1}, "opts": {"delay": 200}}),
            done(json!({"echo": {"d": 1}}), 1),
        ),
        (
            json!({"name": "echo", "data": {"p": 3}, "opts": {"priority": 3}}),
            done(json!({"echo": {"p": 3}}), 1),
        ),
        (
            json!({"name": "echo", "data": {"c": 1}, "opts": {"jobId": "py-custom"}}),
            done(json!({"echo": {"c": 1}}), 1),
        ),
        (
            json!({"name": "fail", "data": {"times": 2}, "opts": {"attempts": 3, "backoff": {"type": "fixed", "delay": 50}}}),
            json!({"state": "completed", "returnvalue": {"attempts": 3}, "failedReason": "demo failure", "attemptsMade": 3, "stacktraceLength": 2}),
        ),
        (
            json!({"name": "fail", "data": {"times": 9}, "opts": {"attempts": 2, "backoff": {"type": "exponential", "delay": 30}}}),
            json!({"state": "failed", "returnvalue": null, "failedReason": "demo failure", "attemptsMade": 2, "stacktraceLength": 2}),
        ),
        (
            json!({"name": "unrecoverable", "data": {}, "opts": {"attempts": 3}}),
            json!({"state": "failed", "returnvalue": null, "failedReason": "unrecoverable failure", "attemptsMade": 1, "stacktraceLength": 1}),
        ),
        (
            json!({"name": "log", "data": {}}),
            done(json!({"logged": 2}), 1),
        ),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Node,
    Python,
    Rust,
}

/// Adds the scenario with `producer`, runs it through `consumer` (named
/// `w1`), returns Node's `inspect` of every job, keyed by position.
async fn run_scenario(server: &RedisServer, producer: Side, consumer: Side) -> Vec<Value> {
    let q = queue_name();
    let jobs: Vec<Value> = scenario().into_iter().map(|(j, _)| j).collect();
    let mut events = Process::start(Lang::Node, "events", cfg(server, &q, json!({}))).await;
    let ids: Vec<String> = match producer {
        Side::Node | Side::Python => {
            let lang = if producer == Side::Node {
                Lang::Node
            } else {
                Lang::Python
            };
            let out = run(lang, "add", cfg(server, &q, json!({"jobs": jobs}))).await;
            out["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().expect("string job id").to_string())
                .collect()
        }
        Side::Rust => {
            let conn = Connection::open(&server.url()).await.unwrap();
            let queue = Queue::new(&q, &conn).await.unwrap();
            let mut ids = Vec::new();
            for j in &jobs {
                ids.push(
                    queue
                        .add(
                            j["name"].as_str().unwrap(),
                            &j["data"],
                            job_options(j.get("opts").unwrap_or(&json!({}))),
                        )
                        .await
                        .unwrap(),
                );
            }
            ids
        }
    };
    let worker_cfg = cfg(server, &q, json!({"name": "w1", "drainDelay": 1}));
    let (mut process, mut worker) = (None, None);
    match consumer {
        Side::Node => process = Some(Process::start(Lang::Node, "worker", worker_cfg).await),
        Side::Python => process = Some(Process::start(Lang::Python, "worker", worker_cfg).await),
        Side::Rust => {
            let conn = Connection::open(&server.url()).await.unwrap();
            let opts = WorkerOptions {
                name: Some("w1".into()),
                drain_delay: Duration::from_secs(1),
                ..Default::default()
            };
            worker = Some(Worker::start(&q, &conn, opts, behave).await.unwrap());
        }
    }
    let finals = |v: &Value| v["event"] == "completed" || v["event"] == "failed";
    events
        .wait_count(Duration::from_secs(90), ids.len(), finals)
        .await;
    if let Some(p) = process {
        p.stop().await;
    }
    if let Some(w) = worker {
        w.close().await;
    }
    events.stop().await;
    let out = run(Lang::Node, "inspect", cfg(server, &q, json!({"ids": ids}))).await;
    ids.iter().map(|id| out["jobs"][id].clone()).collect()
}

/// Checks every job against the scenario's expectations.
fn assert_expected(seen: &[Value], producer: Side, consumer: Side) {
    for (i, ((job, want), got)) in scenario().iter().zip(seen).enumerate() {
        let j = &got["json"];
        let what = format!(
            "job {i} ({}), {producer:?} -> {consumer:?}: {got:#}",
            job["name"]
        );
        assert_eq!(got["state"], want["state"], "state of {what}");
        assert_eq!(
            j["returnvalue"], want["returnvalue"],
            "returnvalue of {what}"
        );
        assert_eq!(
            j["failedReason"], want["failedReason"],
            "failedReason of {what}"
        );
        assert_eq!(
            j["attemptsMade"], want["attemptsMade"],
            "attemptsMade of {what}"
        );
        assert_eq!(
            got["stacktraceLength"], want["stacktraceLength"],
            "stack traces of {what}"
        );
        assert_eq!(j["data"], job["data"], "data of {what}");
        let processed_by = if consumer == Side::Python {
            json!(null)
        } else {
            json!("w1")
        };
        assert_eq!(j["processedBy"], processed_by, "processedBy of {what}");
        let delay = match (job["opts"].get("delay"), producer) {
            (Some(d), _) => d.clone(),
            (None, Side::Python) => json!(0),
            (None, _) => json!(null),
        };
        assert_eq!(j["opts"]["delay"], delay, "opts.delay of {what}");
    }
    let log = &seen[7]["logs"];
    assert_eq!(log, &json!({"logs": ["line 1", "line 2"], "count": 2}));
    assert_eq!(seen[7]["json"]["progress"], json!({"stage": "half"}));
    assert_eq!(seen[3]["json"]["id"], "py-custom");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_producer_rust_worker() {
    let server = RedisServer::start();
    let (reference, ours) = tokio::join!(
        run_scenario(&server, Side::Python, Side::Node),
        run_scenario(&server, Side::Python, Side::Rust),
    );
    assert_expected(&reference, Side::Python, Side::Node);
    assert_expected(&ours, Side::Python, Side::Rust);
    assert_same_json(
        "python-added jobs run by node vs by rust",
        &json!(reference),
        &json!(ours),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_producer_python_worker() {
    let server = RedisServer::start();
    let (reference, ours) = tokio::join!(
        run_scenario(&server, Side::Node, Side::Python),
        run_scenario(&server, Side::Rust, Side::Python),
    );
    assert_expected(&reference, Side::Node, Side::Python);
    assert_expected(&ours, Side::Rust, Side::Python);
    assert_same_json(
        "jobs run by python, added by node vs by rust",
        &json!(reference),
        &json!(ours),
    );
}
