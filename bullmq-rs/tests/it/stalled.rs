//! A killed worker's job is recovered within lock duration + stalled
//! interval by a worker started later (issue 11).

use std::time::{Duration, Instant};

use bullmq_wire::{JobOptions, JobState, Queue, Worker, WorkerOptions};
use serde_json::{json, Value};

use crate::support::{ctx, eventually, queue_name, raw};

#[tokio::test]
async fn a_new_worker_recovers_a_killed_workers_job_within_lock_plus_interval() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let id = queue
        .add("t", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let lock = Duration::from_millis(1000);
    let interval = Duration::from_millis(1000);
    // As a worker killed -9 leaves it: the job in active, its lock running
    // out, and the fleet's last sweep 700 ms ago.
    let _: String = raw(
        &ctx,
        redis::cmd("RPOPLPUSH")
            .arg(format!("bull:{q}:wait"))
            .arg(format!("bull:{q}:active")),
    )
    .await;
    let killed = Instant::now();
    let _: () = raw(
        &ctx,
        redis::cmd("SET")
            .arg(format!("bull:{q}:{id}:lock"))
            .arg("dead-worker")
            .arg("PX")
            .arg(lock.as_millis() as u64),
    )
    .await;
    let _: () = raw(
        &ctx,
        redis::cmd("SET")
            .arg(format!("bull:{q}:stalled-check"))
            .arg("1")
            .arg("PX")
            .arg(300),
    )
    .await;
    let opts = WorkerOptions {
        lock_duration: lock,
        stalled_interval: interval,
        ..Default::default()
    };
    let worker = Worker::start(&q, &ctx.conn, opts, |_job| async move { Ok(Value::Null) })
        .await
        .unwrap();
    eventually(20, "the job to be recovered and completed", || async {
        (queue.get_job_state(&id).await.unwrap() == JobState::Completed).then_some(())
    })
    .await;
    let took = killed.elapsed();
    assert!(
        took < lock + interval,
        "recovered after {took:?}, more than lock + interval"
    );
    worker.close().await;
}
