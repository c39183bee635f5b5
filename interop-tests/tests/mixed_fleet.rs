//! Scenario 2: one queue, a Rust, a Node and a Python worker at once, and
//! producers in all three languages adding 3,000 jobs (plain, delayed,
//! prioritized, some failing once then retried). Every job must complete
//! exactly once: none lost, none run to completion twice.

use std::collections::HashMap;
use std::time::Duration;

use bullmq_wire::{Connection, JobState, NewJob, Queue};
use interop_tests::{cfg, job_options, queue_name, run, Lang, Process, RedisServer};
use serde_json::{json, Value};

const PER_PRODUCER: usize = 1000;

/// Job `i` of a producer: plain, delayed, prioritized or failing once.
fn job(producer: &str, i: usize) -> Value {
    let data = json!({"producer": producer, "i": i, "times": 1});
    if i.is_multiple_of(13) {
        json!({"name": "fail", "data": data, "opts": {"attempts": 2, "backoff": {"type": "fixed", "delay": 20}}})
    } else if i.is_multiple_of(10) {
        json!({"name": "count", "data": data, "opts": {"delay": 50 + (i % 150)}})
    } else if i.is_multiple_of(7) {
        json!({"name": "count", "data": data, "opts": {"priority": 1 + (i % 5)}})
    } else {
        json!({"name": "count", "data": data})
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_languages_share_one_queue_exactly_once() {
    let server = RedisServer::start();
    let q = queue_name();
    let worker_cfg = |name: &str| cfg(&server, &q, json!({"concurrency": 10, "name": name}));
    let mut workers = vec![
        Process::start(Lang::Rust, "worker", worker_cfg("rust")).await,
        Process::start(Lang::Node, "worker", worker_cfg("node")).await,
        Process::start(Lang::Python, "worker", worker_cfg("python")).await,
    ];

    let node_jobs: Vec<Value> = (0..PER_PRODUCER).map(|i| job("node", i)).collect();
    let py_jobs: Vec<Value> = (0..PER_PRODUCER).map(|i| job("python", i)).collect();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    let rust_jobs: Vec<NewJob> = (0..PER_PRODUCER)
        .map(|i| {
            let j = job("rust", i);
            NewJob::new(
                j["name"].as_str().unwrap(),
                &j["data"],
                job_options(j.get("opts").unwrap_or(&json!({}))),
            )
        })
        .collect();
    let (node_ids, py_ids, rust_ids) = tokio::join!(
        run(
            Lang::Node,
            "add",
            cfg(&server, &q, json!({"jobs": node_jobs, "bulk": true}))
        ),
        run(
            Lang::Python,
            "add",
            cfg(&server, &q, json!({"jobs": py_jobs}))
        ),
        async { queue.add_bulk(rust_jobs).await.unwrap() },
    );
    let total = 3 * PER_PRODUCER;
    assert_eq!(
        node_ids["ids"].as_array().unwrap().len()
            + py_ids["ids"].as_array().unwrap().len()
            + rust_ids.len(),
        total
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let counts = queue
            .get_job_counts(&[JobState::Completed, JobState::Failed])
            .await
            .unwrap();
        assert_eq!(counts[&JobState::Failed], 0, "a job failed for good");
        if counts[&JobState::Completed] as usize == total {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {total} jobs completed",
            counts[&JobState::Completed]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut completions: HashMap<String, usize> = HashMap::new();
    let mut starts: HashMap<String, usize> = HashMap::new();
    let mut by_worker: HashMap<&str, usize> = HashMap::new();
    for (name, w) in ["rust", "node", "python"]
        .into_iter()
        .zip(workers.drain(..))
    {
        for line in w.stop().await {
            let id = line["id"]
                .as_str()
                .map(str::to_string)
                .or_else(|| line["id"].as_i64().map(|n| n.to_string()));
            match (line["event"].as_str(), id) {
                (Some("completed"), Some(id)) => {
                    *completions.entry(id).or_default() += 1;
                    *by_worker.entry(name).or_default() += 1;
                }
                (Some("start"), Some(id)) => *starts.entry(id).or_default() += 1,
                _ => {}
            }
        }
    }
    assert_eq!(
        completions.len(),
        total,
        "jobs completed (by worker: {by_worker:?})"
    );
    let twice: Vec<_> = completions.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "jobs completed more than once: {twice:?}");
    for name in ["rust", "node", "python"] {
        assert!(
            by_worker.get(name).copied().unwrap_or(0) > 0,
            "{name} did no work: {by_worker:?}"
        );
    }
    let failing_once = 3 * (0..PER_PRODUCER).filter(|i| i.is_multiple_of(13)).count();
    assert_eq!(
        starts.values().filter(|n| **n == 2).count(),
        failing_once,
        "jobs that failed once ran twice"
    );
    assert_eq!(starts.values().sum::<usize>(), total + failing_once);
}
