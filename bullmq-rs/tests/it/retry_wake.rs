//! A retry after a backoff starts when it is due, even when the failure
//! that delayed it was settled while the worker was blocked on its marker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bullmq_wire::{Backoff, JobError, JobOptions, JobState, Queue, Worker, WorkerOptions};
use serde_json::json;

use crate::support::{ctx, eventually, queue_name};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// (attempt started, attempt failed) in ms since the epoch, per attempt.
type Attempts = Arc<Mutex<Vec<(i64, i64)>>>;

#[tokio::test]
async fn a_backoff_retry_starts_when_due_while_the_worker_blocks() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let attempts: Attempts = Arc::default();
    let seen = attempts.clone();
    // concurrency 4 and one job: the first fetch leaves the worker drained,
    // so it arms its blocking wait (5 s drain delay) while the handler runs
    let opts = WorkerOptions {
        concurrency: 4,
        ..Default::default()
    };
    let worker = Worker::start(&q, &ctx.conn, opts, move |mut job| {
        let seen = seen.clone();
        async move {
            let started = now_ms();
            job.update_progress(json!(50)).await?;
            job.log("about to fail").await?;
            // long enough for the worker to be blocked on its marker
            tokio::time::sleep(Duration::from_millis(150)).await;
            let failed = now_ms();
            if let Ok(mut s) = seen.lock() {
                s.push((started, failed));
            }
            Err(JobError::new("always fails"))
        }
    })
    .await
    .unwrap();
    let job_opts = JobOptions {
        attempts: Some(3),
        backoff: Some(Backoff::exponential(Duration::from_millis(500))),
        ..Default::default()
    };
    let id = queue.add("fail", &json!({}), job_opts).await.unwrap();
    eventually(30, "the job to fail for good", || async {
        (queue.get_job_state(&id).await.unwrap() == JobState::Failed).then_some(())
    })
    .await;
    let runs = attempts.lock().unwrap().clone();
    assert_eq!(runs.len(), 3, "three attempts: {runs:?}");
    // exponential: 500 ms after the first failure, 1000 ms after the second
    for (n, delay) in [(1usize, 500i64), (2, 1000)] {
        let due = runs[n - 1].1 + delay;
        let late = runs[n].0 - due;
        eprintln!("retry {n}: started {late} ms after it was due");
        assert!(
            late < 400,
            "retry {n} started {late} ms after it was due (the drain delay is 5 s)"
        );
    }
    worker.close().await;
}
