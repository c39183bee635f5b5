//! What a Node user sees of a Rust worker's jobs: JSON keys in the order
//! they were written.

use bullmq_wire::{JobOptions, JobState, Queue, Worker, WorkerOptions};
use serde_json::json;

use crate::support::{ctx, eventually, queue_name, raw};

#[tokio::test]
async fn data_and_return_values_keep_their_key_order() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let id = queue
        .add(
            "echo",
            &json!({"i": 1, "batch": "x"}),
            JobOptions::default(),
        )
        .await
        .unwrap();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), |job| async move {
        Ok(json!({"echo": job.data, "at": 2}))
    })
    .await
    .unwrap();
    eventually(20, "the job to complete", || async {
        (queue.get_job_state(&id).await.unwrap() == JobState::Completed).then_some(())
    })
    .await;
    worker.close().await;
    let (data, returnvalue): (String, String) = raw(
        &ctx,
        redis::cmd("HMGET")
            .arg(format!("bull:{q}:{id}"))
            .arg("data")
            .arg("returnvalue"),
    )
    .await;
    assert_eq!(data, r#"{"i":1,"batch":"x"}"#);
    assert_eq!(returnvalue, r#"{"echo":{"i":1,"batch":"x"},"at":2}"#);
}

#[derive(serde::Deserialize)]
struct Payload {
    #[allow(dead_code)]
    n: u32,
}

#[tokio::test]
async fn a_payload_that_does_not_decode_fails_without_retries() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let opts = JobOptions {
        attempts: Some(3),
        ..Default::default()
    };
    let id = queue
        .add("decode", &json!({"n": "not a number"}), opts)
        .await
        .unwrap();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), |job| async move {
        let _p: Payload = serde_json::from_value(job.data)?;
        Ok(json!(null))
    })
    .await
    .unwrap();
    eventually(20, "the job to fail", || async {
        (queue.get_job_state(&id).await.unwrap() == JobState::Failed).then_some(())
    })
    .await;
    worker.close().await;
    let job = queue.get_job(&id).await.unwrap().unwrap();
    assert_eq!(job.attempts_made, 1, "no retry for a bad payload");
    assert!(
        job.failed_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("invalid job data:")),
        "{:?}",
        job.failed_reason
    );
}

#[tokio::test]
async fn a_failed_attempt_stores_where_the_error_was_made() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let id = queue
        .add("boom", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), |_job| async move {
        Err(bullmq_wire::JobError::new("boom"))
    })
    .await
    .unwrap();
    eventually(20, "the job to fail", || async {
        (queue.get_job_state(&id).await.unwrap() == JobState::Failed).then_some(())
    })
    .await;
    worker.close().await;
    let stored: String = raw(
        &ctx,
        redis::cmd("HGET")
            .arg(format!("bull:{q}:{id}"))
            .arg("stacktrace"),
    )
    .await;
    let entries: Vec<String> = serde_json::from_str(&stored).unwrap();
    assert_eq!(entries.len(), 1, "one entry per attempt: {entries:?}");
    assert!(
        entries[0].starts_with("Error: boom\n    at ") && entries[0].contains("fidelity.rs:"),
        "{entries:?}"
    );
}

#[tokio::test]
async fn a_watcher_sees_failures_retries_progress_and_completions() {
    use bullmq_wire::WorkerEvent;
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let worker = Worker::start(
        &q,
        &ctx.conn,
        WorkerOptions::default(),
        |mut job| async move {
            if job.attempts_made == 0 {
                Err(bullmq_wire::JobError::new("first try fails"))
            } else {
                job.update_progress(json!(50)).await?;
                Ok(json!({"ok": true}))
            }
        },
    )
    .await
    .unwrap();
    let mut events = worker.events();
    let opts = JobOptions {
        attempts: Some(2),
        ..Default::default()
    };
    let id = queue.add("twice", &json!({}), opts).await.unwrap();
    assert_eq!(
        next(&mut events).await,
        WorkerEvent::Failed {
            job_id: id.clone(),
            reason: "first try fails".into(),
            attempts_made: 1,
            will_retry: true,
        }
    );
    assert_eq!(
        next(&mut events).await,
        WorkerEvent::Progress {
            job_id: id.clone(),
            progress: json!(50),
        }
    );
    assert_eq!(
        next(&mut events).await,
        WorkerEvent::Completed {
            job_id: id.clone(),
            returnvalue: json!({"ok": true}),
        }
    );
    worker.close().await;
}

async fn next(
    events: &mut tokio::sync::broadcast::Receiver<bullmq_wire::WorkerEvent>,
) -> bullmq_wire::WorkerEvent {
    tokio::time::timeout(std::time::Duration::from_secs(20), events.recv())
        .await
        .expect("an event within 20 s")
        .expect("no lag")
}

#[tokio::test]
async fn waiting_on_a_missing_job_names_the_queue_and_the_id() {
    use bullmq_wire::{Error, QueueEvents, StartAt};
    let ctx = ctx().await;
    let q = queue_name();
    let events = QueueEvents::start(&q, &ctx.conn, StartAt::Now)
        .await
        .unwrap();
    let err = events
        .wait_until_finished("does-not-exist", std::time::Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::JobNotFound { queue, job_id } if *queue == q && job_id == "does-not-exist"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("no job does-not-exist in queue {q}")
    );
}

#[tokio::test]
async fn by_id_operations_on_a_missing_job_say_so() {
    use bullmq_wire::Error;
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let err = queue.update_progress("nope", &json!(5)).await.unwrap_err();
    assert!(
        matches!(&err, Error::JobNotFound { queue, job_id } if *queue == q && job_id == "nope"),
        "{err:?}"
    );
}
