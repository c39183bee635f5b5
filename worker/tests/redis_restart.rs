//! Issue 11, defect 1: jobs running while Redis is killed and restarted
//! (same port, AOF) complete, and keep every progress and log write.

use std::time::Duration;

use bullmq_wire::testing::RedisServer;
use bullmq_wire::{Connection, JobOptions, JobState, Queue, WorkerOptions};
use serde_json::{json, Value};
use tokio::time::Instant;
use worker_runtime::{Call, Registry, Runtime, RuntimeOptions};

const WAIT: Duration = Duration::from_secs(60);
const JOBS: usize = 5;
const STEPS: u64 = 12;

/// Reports progress and logs a line every 100 ms, `STEPS` times.
fn stepping_registry() -> Registry {
    let mut r = Registry::new();
    r.handle("steps.run", |mut call: Call| async move {
        for i in 1..=STEPS {
            tokio::time::sleep(Duration::from_millis(100)).await;
            call.progress(json!(i)).await?;
            call.log(&format!("step {i}")).await?;
        }
        Ok(json!("done"))
    })
    .unwrap();
    r
}

async fn wait_for(
    queue: &Queue,
    ids: &[String],
    what: &str,
    ok: impl Fn(&bullmq_wire::Job) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    for id in ids {
        loop {
            if let Ok(Some(job)) = queue.get_job(id).await {
                if ok(&job) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "job {id}: {what} never happened");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

#[tokio::test]
async fn a_redis_restart_mid_job_fails_nothing_and_loses_no_progress_or_log() {
    let mut server = RedisServer::start_durable();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new("steps", &conn).await.unwrap();
    let opts = RuntimeOptions {
        worker: WorkerOptions {
            concurrency: JOBS,
            ..Default::default()
        },
        ..Default::default()
    };
    let runtime = Runtime::start(&conn, stepping_registry(), opts)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..JOBS {
        ids.push(
            queue
                .add("run", &json!({}), JobOptions::default())
                .await
                .unwrap(),
        );
    }
    wait_for(&queue, &ids, "first progress", |j| j.progress != json!(0)).await;

    server.kill();
    // the outage the handlers run through: several progress/log writes each
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.restart();

    wait_for(&queue, &ids, "finishing", |j| j.finished_on.is_some()).await;
    for id in &ids {
        let job = queue.get_job(id).await.unwrap().unwrap();
        assert_eq!(
            queue.get_job_state(id).await.unwrap(),
            JobState::Completed,
            "job {id} failed: {:?}",
            job.failed_reason
        );
        assert_eq!(job.returnvalue, Some(Value::from("done")));
        assert_eq!(job.progress, json!(STEPS), "job {id}: the latest progress");
        let (lines, count) = queue.get_job_logs(id, 0, -1, true).await.unwrap();
        let expected: Vec<String> = (1..=STEPS).map(|i| format!("step {i}")).collect();
        assert_eq!(count, STEPS, "job {id}: every log line, once");
        assert_eq!(lines, expected, "job {id}: log lines in order");
    }
    runtime.close().await;
}
