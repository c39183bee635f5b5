//! Node reads a Rust worker's job data and return value with their keys in
//! the order they were written (Bull Board shows them as Node parses them).

use bullmq_wire::{Connection, JobOptions, JobState, Queue, Worker, WorkerOptions};
use interop_tests::{behave, cfg, queue_name, run, Lang, RedisServer};
use serde_json::json;

#[tokio::test]
async fn node_sees_a_rust_workers_keys_in_written_order() {
    let server = RedisServer::start();
    let q = queue_name();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    let id = queue
        .add(
            "echo",
            &json!({"i": 1, "batch": "x"}),
            JobOptions::default(),
        )
        .await
        .unwrap();
    let worker = Worker::start(&q, &conn, WorkerOptions::default(), behave)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while queue.get_job_state(&id).await.unwrap() != JobState::Completed {
        assert!(
            tokio::time::Instant::now() < deadline,
            "job never completed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    worker.close().await;
    let out = run(
        Lang::Node,
        "inspect",
        cfg(&server, &q, json!({"ids": [id]})),
    )
    .await;
    let job = &out["jobs"][id.as_str()]["json"];
    // the driver prints what Node parsed, in Node's key order, and we read
    // it back keeping that order (serde_json's preserve_order)
    assert_eq!(job["data"].to_string(), r#"{"i":1,"batch":"x"}"#, "{out}");
    assert_eq!(
        job["returnvalue"].to_string(),
        r#"{"echo":{"i":1,"batch":"x"}}"#,
        "{out}"
    );
}
