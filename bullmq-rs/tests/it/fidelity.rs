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
