//! Scenario 7: Redis is killed (`kill -9`) and restarted mid-run. Our
//! worker reconnects, reloads its scripts (the new process has none cached)
//! and loses no job; none completes twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bullmq_wire::{Connection, JobOptions, JobState, NewJob, Queue, Worker, WorkerOptions};
use interop_tests::{queue_name, RedisServer};
use serde_json::json;

async fn completed(queue: &Queue) -> Option<u64> {
    queue
        .get_job_counts(&[JobState::Completed])
        .await
        .ok()
        .map(|c| c[&JobState::Completed])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_survives_a_redis_restart_without_losing_jobs() {
    let mut server = RedisServer::start_durable();
    let q = queue_name();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    let add = |from: usize| {
        (from..from + 200)
            .map(|i| NewJob::new("job", &json!({"i": i}), JobOptions::default()))
            .collect::<Vec<_>>()
    };
    queue.add_bulk(add(0)).await.unwrap();

    let runs: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
    let r = runs.clone();
    let opts = WorkerOptions {
        concurrency: 5,
        drain_delay: Duration::from_millis(500),
        ..Default::default()
    };
    let worker = Worker::start(&q, &conn, opts, move |job| {
        let r = r.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            *r.lock()
                .unwrap()
                .entry(job.data["i"].as_i64().unwrap())
                .or_default() += 1;
            Ok(json!(true))
        }
    })
    .await
    .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while completed(&queue).await.unwrap_or(0) < 50 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no progress before the restart"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill();
    tokio::time::sleep(Duration::from_millis(500)).await; // the worker keeps failing to reach Redis meanwhile
    server.restart();
    let script_cache: Vec<bool> = {
        let client = redis::Client::open(server.url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("SCRIPT")
            .arg("EXISTS")
            .arg("0000000000000000000000000000000000000000")
            .query_async(&mut con)
            .await
            .unwrap()
    };
    assert_eq!(script_cache, vec![false]);

    // the producer reconnects too
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match queue.add_bulk(add(200)).await {
            Ok(_) => break,
            Err(e) => {
                assert!(e.is_retryable(), "not a retryable error: {e}");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "producer never reconnected: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while completed(&queue).await != Some(400) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "jobs lost: {:?} of 400 completed",
            completed(&queue).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.close().await;
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), 400);
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "ran more than once: {twice:?}");
}
