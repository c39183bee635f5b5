//! The runtime serving the demo services end to end on a throwaway Redis.

use std::time::Duration;

use bullmq_wire::testing::RedisServer;
use bullmq_wire::{Connection, Finished, JobOptions, Queue, QueueEvents, StartAt, WorkerOptions};
use serde_json::json;
use worker_runtime::{services, Runtime, RuntimeOptions};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn demo_service_echo_sleep_fail_and_unknown() {
    let server = RedisServer::start();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new("demo", &conn).await.unwrap();
    let events = QueueEvents::start("demo", &conn, StartAt::Now)
        .await
        .unwrap();
    let opts = RuntimeOptions {
        worker: WorkerOptions {
            concurrency: 4,
            ..Default::default()
        },
        ..Default::default()
    };
    let runtime = Runtime::start(&conn, services::demo::registry().unwrap(), opts)
        .await
        .unwrap();

    let echo = queue
        .add("echo", &json!({"hi": 1}), JobOptions::default())
        .await
        .unwrap();
    let sleep = queue
        .add(
            "sleep",
            &json!({"ms": 60, "steps": 3}),
            JobOptions::default(),
        )
        .await
        .unwrap();
    let fail = queue
        .add(
            "fail",
            &json!({"times": 1}),
            JobOptions {
                attempts: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let never = queue
        .add(
            "fail",
            &json!({"times": 5}),
            JobOptions {
                attempts: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let unknown = queue
        .add(
            "nope",
            &json!({}),
            JobOptions {
                attempts: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    assert_eq!(
        events.wait_until_finished(&echo, WAIT).await.unwrap(),
        Finished::Completed(json!({"echo": {"hi": 1}}))
    );
    assert_eq!(
        events.wait_until_finished(&sleep, WAIT).await.unwrap(),
        Finished::Completed(json!({"slept": 60}))
    );
    assert_eq!(
        queue.get_job(&sleep).await.unwrap().unwrap().progress,
        json!(100)
    );
    assert_eq!(
        events.wait_until_finished(&fail, WAIT).await.unwrap(),
        Finished::Completed(json!({"attempts": 2}))
    );
    assert_eq!(
        events.wait_until_finished(&never, WAIT).await.unwrap(),
        Finished::Failed("demo failure".into())
    );
    assert_eq!(
        events.wait_until_finished(&unknown, WAIT).await.unwrap(),
        Finished::Failed("unknown method demo.nope: no handler registered".into())
    );
    assert_eq!(
        queue
            .get_job(&unknown)
            .await
            .unwrap()
            .unwrap()
            .attempts_made,
        1,
        "no retries for an unknown method"
    );
    runtime.close().await;
}

#[tokio::test]
async fn shutdown_cancels_long_handlers_and_keeps_the_job() {
    let server = RedisServer::start();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new("demo", &conn).await.unwrap();
    let opts = RuntimeOptions {
        shutdown_grace: Duration::from_secs(5),
        ..Default::default()
    };
    let runtime = Runtime::start(&conn, services::demo::registry().unwrap(), opts)
        .await
        .unwrap();
    let id = queue
        .add(
            "sleep",
            &json!({"ms": 60_000, "steps": 600}),
            JobOptions {
                attempts: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while queue.get_job(&id).await.unwrap().unwrap().progress == json!(0) {
        assert!(tokio::time::Instant::now() < deadline, "job never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runtime.close().await;
    let job = queue.get_job(&id).await.unwrap().unwrap();
    assert_eq!(job.failed_reason.as_deref(), Some("worker shutting down"));
    assert_eq!(
        queue.get_job_state(&id).await.unwrap(),
        bullmq_wire::JobState::Waiting,
        "retried, not lost"
    );
}
