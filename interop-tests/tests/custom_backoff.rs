//! Scenario 10: a custom backoff. Jobs added by Node with
//! `backoff: {type: "linear", delay: 100}` and run by our worker with a
//! `backoff_strategy` wait exactly what the strategy returns before each
//! retry (the `delayed` event's due time minus the time the failure was
//! recorded), never start before they are due, retry at once on `Some(0)`
//! and fail for good on `None` although attempts remain. A Node worker
//! with the same strategy leaves the same jobs and the same event sequences.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bullmq_wire::{Backoff, BackoffStrategy, Connection, Worker, WorkerOptions};
use interop_tests::{behave, cfg, queue_name, run, Lang, Process, RedisServer};
use serde_json::{json, Value};

/// 0: a warm-up, so no measured failure pays for loading the scripts
/// a: fails until the strategy gives up (after two retries, 100 and 200 ms)
/// b: succeeds on the third attempt, after waiting 100 and 200 ms
/// c: retried at once (the strategy returns 0)
/// d: a type the strategy does not know: failed after one attempt
fn jobs() -> Value {
    json!([
        {"name": "echo", "data": {}},
        {"name": "fail", "data": {"times": 9}, "opts": {"attempts": 5, "backoff": {"type": "linear", "delay": 100}}},
        {"name": "fail", "data": {"times": 2}, "opts": {"attempts": 5, "backoff": {"type": "linear", "delay": 100}}},
        {"name": "fail", "data": {"times": 1}, "opts": {"attempts": 3, "backoff": {"type": "immediate"}}},
        {"name": "fail", "data": {"times": 9}, "opts": {"attempts": 3, "backoff": {"type": "mystery", "delay": 10}}},
    ])
}

/// One strategy call: job id, attempt, type, error message, backoff delay.
type Call = (String, i64, String, String, Option<Duration>);

/// `linear`: attempt × the job's delay for the first two retries, then
/// give up; `immediate`: retry now; anything else: give up.
fn strategy(calls: Arc<Mutex<Vec<Call>>>) -> BackoffStrategy {
    Arc::new(move |attempt, kind, err, job| {
        let delay = match &job.opts.backoff {
            Some(Backoff::Custom { delay, .. }) => *delay,
            _ => None,
        };
        calls.lock().unwrap().push((
            job.id.clone(),
            attempt,
            kind.to_string(),
            err.message.clone(),
            delay,
        ));
        match kind {
            "linear" if attempt < 3 => Some(delay.unwrap_or_default() * attempt as u32),
            "immediate" => Some(Duration::ZERO),
            _ => None,
        }
    })
}

/// The same strategy for the Node driver, as a table of delays.
fn node_strategy() -> Value {
    json!({"linear": [100, 200], "immediate": [0, 0]})
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Node,
    Rust,
}

struct Outcome {
    ids: Vec<String>,
    /// Node's `inspect` of each job.
    jobs: Vec<Value>,
    /// Every stream entry of each job, in order.
    events: BTreeMap<String, Vec<Value>>,
    calls: Vec<Call>,
}

async fn run_jobs(server: &RedisServer, side: Side) -> Outcome {
    let q = queue_name();
    let mut events = Process::start(Lang::Node, "events", cfg(server, &q, json!({}))).await;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (mut node, mut rust) = (None, None);
    match side {
        Side::Node => {
            let c = cfg(
                server,
                &q,
                json!({"backoffDelays": node_strategy(), "drainDelay": 1}),
            );
            node = Some(Process::start(Lang::Node, "worker", c).await);
        }
        Side::Rust => {
            let conn = Connection::open(&server.url()).await.unwrap();
            let opts = WorkerOptions {
                backoff_strategy: Some(strategy(calls.clone())),
                drain_delay: Duration::from_secs(1),
                ..Default::default()
            };
            rust = Some(Worker::start(&q, &conn, opts, behave).await.unwrap());
        }
    }
    let out = run(Lang::Node, "add", cfg(server, &q, json!({"jobs": jobs()}))).await;
    let ids: Vec<String> = out["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let finals = |v: &Value| v["event"] == "completed" || v["event"] == "failed";
    events
        .wait_count(Duration::from_secs(60), ids.len(), finals)
        .await;
    if let Some(p) = node {
        p.stop().await;
    }
    if let Some(w) = rust {
        w.close().await;
    }
    let seen = events.stop().await;
    let mut per_job: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in seen.iter().filter(|e| e.get("event").is_some()) {
        if let Some(id) = e["args"].get("jobId").and_then(Value::as_str) {
            per_job.entry(id.to_string()).or_default().push(e.clone());
        }
    }
    let inspect = run(Lang::Node, "inspect", cfg(server, &q, json!({"ids": ids}))).await;
    let jobs = ids.iter().map(|id| inspect["jobs"][id].clone()).collect();
    let calls = calls.lock().unwrap().clone();
    Outcome {
        ids,
        jobs,
        events: per_job,
        calls,
    }
}

/// Milliseconds of a stream id (`<ms>-<seq>`): when Redis wrote the entry.
fn stream_ms(e: &Value) -> i64 {
    e["id"]
        .as_str()
        .unwrap()
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn number(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

/// For each `delayed` event of a job: (due − recorded, ms from due to the
/// next start), which must be ≥ 0.
fn delays(events: &[Value]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if e["event"] == "delayed" {
            let due = number(&e["args"]["delay"]);
            let next = events[i..]
                .iter()
                .find(|n| n["event"] == "active")
                .expect("a start after the delay");
            out.push((due - stream_ms(e), stream_ms(next) - due));
        }
    }
    out
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_worker_waits_what_the_strategy_returns() {
    let server = RedisServer::start();
    let out = run_jobs(&server, Side::Rust).await;
    let [a, b, c, d] = [1, 2, 3, 4].map(|i| out.ids[i].clone());

    // the strategy saw each failure with its attempt number, type and job
    let call = |id: &str, attempt, kind: &str, delay: Option<u64>| {
        (
            id.to_string(),
            attempt,
            kind.to_string(),
            "demo failure".to_string(),
            delay.map(Duration::from_millis),
        )
    };
    let mut calls = out.calls.clone();
    calls.sort();
    let mut want = vec![
        call(&a, 1, "linear", Some(100)),
        call(&a, 2, "linear", Some(100)),
        call(&a, 3, "linear", Some(100)),
        call(&b, 1, "linear", Some(100)),
        call(&b, 2, "linear", Some(100)),
        call(&c, 1, "immediate", None),
        call(&d, 1, "mystery", Some(10)),
    ];
    want.sort();
    assert_eq!(calls, want);

    // the waits are the strategy's: recorded due time − failure time, and
    // no retry starts before it is due
    for id in [&a, &b] {
        let waits = delays(&out.events[id]);
        assert_eq!(waits.len(), 2, "job {id}: {:?}", out.events[id]);
        for ((waited, late), want) in waits.iter().zip([100, 200]) {
            assert!(
                (want - 50..=want + 2).contains(waited),
                "job {id}: due {waited} ms after the failure, strategy said {want}"
            );
            assert!(
                *late >= 0,
                "job {id}: started {} ms before it was due",
                -late
            );
        }
    }
    assert!(delays(&out.events[&c]).is_empty() && delays(&out.events[&d]).is_empty());

    // how each job ended
    let job = |i: usize| &out.jobs[i]["json"];
    assert_eq!(
        (
            out.jobs[1]["state"].as_str(),
            job(1)["attemptsMade"].as_i64()
        ),
        (Some("failed"), Some(3))
    );
    assert_eq!(job(1)["failedReason"], "demo failure");
    assert_eq!(out.jobs[1]["stacktraceLength"], 3);
    assert_eq!(
        (out.jobs[2]["state"].as_str(), job(2)["returnvalue"].clone()),
        (Some("completed"), json!({"attempts": 3}))
    );
    assert_eq!(
        (out.jobs[3]["state"].as_str(), job(3)["returnvalue"].clone()),
        (Some("completed"), json!({"attempts": 2}))
    );
    assert_eq!(
        (
            out.jobs[4]["state"].as_str(),
            job(4)["attemptsMade"].as_i64()
        ),
        (Some("failed"), Some(1))
    );
    // given up with attempts left: not "retries exhausted"
    for id in [&a, &d] {
        assert!(
            !names(&out.events[id]).contains(&"retries-exhausted"),
            "job {id}: {:?}",
            names(&out.events[id])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_worker_with_the_same_strategy_does_the_same() {
    let server = RedisServer::start();
    let (node, rust) = tokio::join!(run_jobs(&server, Side::Node), run_jobs(&server, Side::Rust));
    for (i, (n, r)) in node.jobs.iter().zip(&rust.jobs).enumerate() {
        let (mut n, mut r) = (n.clone(), r.clone());
        for j in [&mut n, &mut r] {
            j["json"]["queueQualifiedName"] = Value::Null;
        }
        assert_eq!(r, n, "job {i}: rust vs node worker");
    }
    for (i, (nid, rid)) in node.ids.iter().zip(&rust.ids).enumerate() {
        assert_eq!(
            names(&rust.events[rid]),
            names(&node.events[nid]),
            "events of job {i}: rust vs node worker"
        );
        let (nd, rd) = (delays(&node.events[nid]), delays(&rust.events[rid]));
        assert_eq!(nd.len(), rd.len());
        for ((nw, _), (rw, _)) in nd.iter().zip(&rd) {
            assert!(
                (nw - rw).abs() <= 50,
                "job {i}: node waited {nw} ms, rust {rw} ms"
            );
        }
    }
}
