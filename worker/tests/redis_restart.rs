//! Issue 11, defect 1: jobs running while Redis is killed and restarted
//! (same port, AOF) complete, and keep every progress and log write.

use std::time::Duration;

use bullmq_wire::testing::RedisServer;
use bullmq_wire::{Connection, JobOptions, JobState, Queue, WorkerOptions};
use serde_json::{json, Value};
use worker_runtime::{Runtime, RuntimeOptions};

mod support;
use support::{stepping_registry, wait_all};

const WAIT: Duration = Duration::from_secs(60);
const JOBS: usize = 5;
const STEPS: u64 = 12;

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
    let runtime = Runtime::start(&conn, stepping_registry(STEPS), opts)
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
    wait_all(&queue, &ids, WAIT, "first progress", |j| {
        j.progress != json!(0)
    })
    .await;

    server.kill();
    // the outage the handlers run through: several progress/log writes each
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.restart();

    wait_all(&queue, &ids, WAIT, "finishing", |j| j.finished_on.is_some()).await;
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
