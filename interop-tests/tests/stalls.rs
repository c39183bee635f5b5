//! Scenario 3: a worker killed with `kill -9` while holding active jobs.
//! Its locks expire; a worker of the other language finds the jobs stalled
//! and runs them; a job that stalls more than maxStalledCount times fails
//! with BullMQ's reason, whoever finds it.

use std::time::Duration;

use bullmq_wire::{Connection, JobState, Queue, Worker, WorkerOptions};
use interop_tests::{behave, cfg, queue_name, run, Lang, Process, RedisServer};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

/// Adds `n` long sleep jobs; returns their ids.
async fn add_sleepers(server: &RedisServer, q: &str, n: usize) -> Vec<String> {
    let jobs: Vec<Value> = (0..n)
        .map(|_| json!({"name": "sleep", "data": {"ms": 600000}}))
        .collect();
    let out = run(Lang::Node, "add", cfg(server, q, json!({"jobs": jobs}))).await;
    out["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Starts a worker that takes every sleeper, then kills it with -9. Its
/// stalled check runs at start and throttles the fleet's next check for its
/// stalledInterval (the `stalled-check` key), so that interval is short too.
async fn take_and_die(server: &RedisServer, q: &str, lang: Lang, n: usize) {
    let config = json!({"concurrency": n, "lockDuration": 1000, "stalledInterval": 300});
    let mut w = Process::start(lang, "worker", cfg(server, q, config)).await;
    w.wait_count(T, n, |v| v["event"] == "start").await;
    w.kill9().await;
}

/// Makes the sleepers short so whoever recovers them finishes quickly.
async fn shorten(server: &RedisServer, q: &str, ids: &[String]) {
    for id in ids {
        run(
            Lang::Node,
            "control",
            cfg(
                server,
                q,
                json!({"op": "updateData", "id": id, "data": {"ms": 10}}),
            ),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_worker_recovers_jobs_of_a_killed_rust_worker() {
    let server = RedisServer::start();
    let q = queue_name();
    let ids = add_sleepers(&server, &q, 2).await;
    take_and_die(&server, &q, Lang::Rust, 2).await;
    shorten(&server, &q, &ids).await;
    let mut node = Process::start(
        Lang::Node,
        "worker",
        cfg(
            &server,
            &q,
            json!({"concurrency": 2, "stalledInterval": 300, "lockDuration": 1000}),
        ),
    )
    .await;
    node.wait_count(T, 2, |v| v["event"] == "completed").await;
    node.stop().await;
    let out = run(Lang::Node, "inspect", cfg(&server, &q, json!({"ids": ids}))).await;
    for id in &ids {
        assert_eq!(out["jobs"][id]["state"], "completed", "{out:#}");
        assert_eq!(out["jobs"][id]["json"]["stalledCounter"], 1);
        assert_eq!(out["jobs"][id]["json"]["attemptsStarted"], 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_worker_recovers_jobs_of_a_killed_node_worker() {
    let server = RedisServer::start();
    let q = queue_name();
    let ids = add_sleepers(&server, &q, 2).await;
    take_and_die(&server, &q, Lang::Node, 2).await;
    shorten(&server, &q, &ids).await;
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    let opts = WorkerOptions {
        concurrency: 2,
        stalled_interval: Duration::from_millis(300),
        ..Default::default()
    };
    let worker = Worker::start(&q, &conn, opts, behave).await.unwrap();
    for id in &ids {
        let deadline = tokio::time::Instant::now() + T;
        while queue.get_job_state(id).await.unwrap() != JobState::Completed {
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {id} not recovered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let job = queue.get_job(id).await.unwrap().unwrap();
        assert_eq!(job.stalled_counter, 1);
        assert_eq!(job.returnvalue, Some(json!({"slept": 10})));
    }
    worker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalling_past_max_stalled_count_fails_the_job_across_languages() {
    let server = RedisServer::start();
    let q = queue_name();
    let ids = add_sleepers(&server, &q, 1).await;
    // stall 1: a Rust worker dies; a Node worker recovers the job and takes it
    take_and_die(&server, &q, Lang::Rust, 1).await;
    let mut node = Process::start(
        Lang::Node,
        "worker",
        cfg(
            &server,
            &q,
            json!({"stalledInterval": 300, "lockDuration": 1000, "maxStalledCount": 1}),
        ),
    )
    .await;
    node.wait_for(T, |v| v["event"] == "start").await;
    // stall 2: the Node worker dies too; our worker finds it past the limit
    node.kill9().await;
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    let opts = WorkerOptions {
        stalled_interval: Duration::from_millis(300),
        max_stalled_count: 1,
        ..Default::default()
    };
    let worker = Worker::start(&q, &conn, opts, behave).await.unwrap();
    let id = &ids[0];
    let deadline = tokio::time::Instant::now() + T;
    while queue.get_job_state(id).await.unwrap() != JobState::Failed {
        assert!(tokio::time::Instant::now() < deadline, "job never failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.close().await;
    let out = run(Lang::Node, "inspect", cfg(&server, &q, json!({"ids": ids}))).await;
    let job = &out["jobs"][id]["json"];
    assert_eq!(
        job["failedReason"], "job stalled more than allowable limit",
        "{out:#}"
    );
    assert_eq!(job["stalledCounter"], 2);
    assert_eq!(job["attemptsMade"], 1);
}
