//! Queue and job administration: pause/resume, drain, clean, obliterate,
//! bulk retry and promotion, removal, delay and priority changes.

use std::time::Duration;

use bullmq_wire::{JobError, JobOptions, JobState, Queue, Worker, WorkerOptions};
use serde_json::{json, Value};

use crate::support::{ctx, eventually, queue_name, raw};

#[tokio::test]
async fn pause_stops_workers_and_resume_restarts_them() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    queue.pause().await.unwrap();
    assert!(queue.is_paused().await.unwrap());
    let id = queue
        .add("x", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let opts = WorkerOptions {
        drain_delay: Duration::from_millis(200),
        ..Default::default()
    };
    let worker = Worker::start(&q, &ctx.conn, opts, |_j| async move { Ok(Value::Null) })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await; // a paused queue must stay untouched meanwhile
    assert_eq!(queue.get_job_state(&id).await.unwrap(), JobState::Waiting);
    queue.resume().await.unwrap();
    eventually(20, "job completed after resume", || async {
        (queue.get_job_state(&id).await.unwrap() == JobState::Completed).then_some(())
    })
    .await;
    worker.close().await;
}

#[tokio::test]
async fn drain_clean_and_obliterate() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    queue
        .add("w", &json!({}), JobOptions::default())
        .await
        .unwrap();
    queue
        .add(
            "p",
            &json!({}),
            JobOptions {
                priority: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let d = queue
        .add(
            "d",
            &json!({}),
            JobOptions {
                delay: Some(Duration::from_secs(60)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(queue.drain(false).await.unwrap(), 2);
    let counts = queue.get_job_counts(&[]).await.unwrap();
    assert_eq!(
        counts[&JobState::Waiting] + counts[&JobState::Prioritized],
        0
    );
    assert_eq!(counts[&JobState::Delayed], 1);
    assert!(queue.get_job(&d).await.unwrap().is_some());

    let f = queue
        .add("f", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), |_j| async move {
        Err(JobError::new("x"))
    })
    .await
    .unwrap();
    eventually(20, "failed", || async {
        (queue.get_job_state(&f).await.unwrap() == JobState::Failed).then_some(())
    })
    .await;
    worker.close().await;
    let cleaned = queue.clean(0, 0, JobState::Failed).await.unwrap();
    assert_eq!(cleaned, vec![f.clone()]);
    assert!(queue.get_job(&f).await.unwrap().is_none());

    queue.obliterate(false).await.unwrap();
    let keys: Vec<String> = raw(&ctx, redis::cmd("KEYS").arg(format!("bull:{q}:*"))).await;
    assert!(keys.is_empty(), "left behind: {keys:?}");
}

#[tokio::test]
async fn retry_jobs_and_job_retry_bring_failed_jobs_back() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let a = queue
        .add("a", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let b = queue
        .add("b", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), |_j| async move {
        Err(JobError::new("x"))
    })
    .await
    .unwrap();
    for id in [&a, &b] {
        eventually(20, "failed", || async {
            (queue.get_job_state(id).await.unwrap() == JobState::Failed).then_some(())
        })
        .await;
    }
    worker.close().await;
    queue.retry_jobs(JobState::Failed, 1, None).await.unwrap();
    assert_eq!(
        queue.get_job_counts(&[JobState::Waiting]).await.unwrap()[&JobState::Waiting],
        2
    );
    let job = queue.get_job(&a).await.unwrap().unwrap();
    assert!(job.failed_reason.is_none() && job.finished_on.is_none());

    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), |_j| async move {
        Ok(json!(1))
    })
    .await
    .unwrap();
    eventually(20, "completed", || async {
        (queue.get_job_state(&a).await.unwrap() == JobState::Completed).then_some(())
    })
    .await;
    worker.close().await;
    let job = queue.get_job(&a).await.unwrap().unwrap();
    job.retry(JobState::Completed).await.unwrap();
    assert_eq!(queue.get_job_state(&a).await.unwrap(), JobState::Waiting);
    assert!(job.retry(JobState::Failed).await.is_err(), "not in failed");
}

#[tokio::test]
async fn promote_change_delay_priority_and_remove() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let d = queue
        .add(
            "d",
            &json!({}),
            JobOptions {
                delay: Some(Duration::from_secs(60)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut job = queue.get_job(&d).await.unwrap().unwrap();
    job.change_delay(Duration::from_secs(120)).await.unwrap();
    assert_eq!(
        queue.get_job(&d).await.unwrap().unwrap().delay,
        Duration::from_secs(120)
    );
    job.promote().await.unwrap();
    assert_eq!(queue.get_job_state(&d).await.unwrap(), JobState::Waiting);
    assert!(job.promote().await.is_err(), "no longer delayed");

    job.change_priority(7, false).await.unwrap();
    assert_eq!(
        queue.get_job_state(&d).await.unwrap(),
        JobState::Prioritized
    );
    assert!(job.change_priority(3_000_000, false).await.is_err());

    let e = queue
        .add(
            "e",
            &json!({}),
            JobOptions {
                delay: Some(Duration::from_secs(60)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    queue.promote_jobs(100).await.unwrap();
    assert_eq!(queue.get_job_state(&e).await.unwrap(), JobState::Waiting);

    assert!(job.remove().await.unwrap());
    assert!(queue.get_job(&d).await.unwrap().is_none());
    assert_eq!(queue.get_job_state(&d).await.unwrap(), JobState::Unknown);
}
