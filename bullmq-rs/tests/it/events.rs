//! QueueEvents: typed events in BullMQ's order, and wait_until_finished.

use std::time::Duration;

use bullmq_wire::{
    EventKind, Finished, JobError, JobOptions, Queue, QueueEvents, StartAt, Worker, WorkerOptions,
};
use serde_json::json;

use crate::support::{ctx, queue_name};

#[tokio::test]
async fn sees_a_job_lifecycle_in_order() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let events = QueueEvents::start(&q, &ctx.conn, StartAt::Now)
        .await
        .unwrap();
    let mut rx = events.subscribe();
    let id = queue
        .add("log", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let worker = Worker::start(
        &q,
        &ctx.conn,
        WorkerOptions::default(),
        |mut job| async move {
            job.update_progress(json!(50)).await?;
            job.log("hello").await?;
            Ok(json!({"ok": true}))
        },
    )
    .await
    .unwrap();
    let mut names = Vec::new();
    while names.last().map(String::as_str) != Some("drained") {
        let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("event in time")
            .unwrap();
        if let Some(job_id) = ev.kind.job_id() {
            assert_eq!(job_id, id);
        }
        if let EventKind::Completed { returnvalue, .. } = &ev.kind {
            assert_eq!(returnvalue, &json!({"ok": true}));
        }
        names.push(ev.kind.name().to_string());
    }
    assert_eq!(
        names,
        [
            "added",
            "waiting",
            "active",
            "progress",
            "completed",
            "drained"
        ]
    );
    let (logs, count) = queue.get_job_logs(&id, 0, -1, true).await.unwrap();
    assert_eq!((logs, count), (vec!["hello".to_string()], 1));
    worker.close().await;
}

#[tokio::test]
async fn wait_until_finished_reports_both_outcomes() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let events = QueueEvents::start(&q, &ctx.conn, StartAt::Now)
        .await
        .unwrap();
    let ok = queue
        .add("ok", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let bad = queue
        .add("bad", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), |job| async move {
        if job.name == "bad" {
            Err(JobError::new("nope"))
        } else {
            Ok(json!(7))
        }
    })
    .await
    .unwrap();
    let a = events
        .wait_until_finished(&ok, Duration::from_secs(20))
        .await
        .unwrap();
    let b = events
        .wait_until_finished(&bad, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(a, Finished::Completed(json!(7)));
    assert_eq!(b, Finished::Failed("nope".into()));
    // already finished: answered from the job's state
    assert_eq!(
        events
            .wait_until_finished(&ok, Duration::from_secs(1))
            .await
            .unwrap(),
        Finished::Completed(json!(7))
    );
    worker.close().await;
}
