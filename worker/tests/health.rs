//! A runtime's `Health` (what the gateway's `/healthz` shows of its
//! in-process worker): running, the last error while Redis is away,
//! stopping and stopped.

use std::time::Duration;

use bullmq_wire::testing::RedisServer;
use bullmq_wire::{Connection, JobOptions, JobState, Queue, WorkerOptions};
use serde_json::json;
use tokio::time::Instant;
use worker_runtime::{Call, Health, HealthReport, Registry, RunState, Runtime, RuntimeOptions};

const WAIT: Duration = Duration::from_secs(60);

async fn until(health: &Health, what: &str, ok: impl Fn(&HealthReport) -> bool) -> HealthReport {
    let deadline = Instant::now() + WAIT;
    loop {
        let report = health.report();
        if ok(&report) {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never happened: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn health_reports_running_the_last_error_and_stopped() {
    let mut server = RedisServer::start_durable();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new("slow", &conn).await.unwrap();
    let mut registry = Registry::new();
    registry
        .handle("slow.run", |_call: Call| async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok(json!("done"))
        })
        .unwrap();
    let options = RuntimeOptions {
        worker: WorkerOptions::default(),
        ..Default::default()
    };
    let runtime = Runtime::start(&conn, registry, options).await.unwrap();
    let health = runtime.health();
    let report = health.report();
    assert_eq!(report.state, RunState::Running);
    assert_eq!(report.services, vec!["slow".to_string()]);
    assert!(report.ended.is_empty() && report.last_error.is_none());

    // A job is running when Redis goes away: its result cannot be written,
    // which the worker reports as an error.
    let id = queue
        .add("run", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while queue.get_job_state(&id).await.ok() != Some(JobState::Active) {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill();
    let report = until(&health, "an error", |r| r.last_error.is_some()).await;
    let error = report.last_error.expect("checked above");
    assert_eq!(error.service, "slow");
    assert!(!error.message.is_empty() && error.at_ms > 0);
    assert_eq!(report.state, RunState::Running, "it keeps retrying");
    server.restart();
    let deadline = Instant::now() + WAIT;
    while queue.get_job_state(&id).await.ok() != Some(JobState::Completed) {
        assert!(Instant::now() < deadline, "the job never completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    runtime.close().await;
    let report = health.report();
    assert_eq!(report.state, RunState::Stopped);
    assert_eq!(report.services, vec!["slow".to_string()]);
}
