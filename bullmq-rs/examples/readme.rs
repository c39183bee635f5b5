//! The README's library examples, compiled so they stay true. Run against
//! a local Redis: `cargo run -p bullmq-wire --example readme`.

use std::time::Duration;

use bullmq_wire::{
    Backoff, Connection, FlowJob, FlowProducer, JobError, JobOptions, JobTemplate, ParentOnFailure,
    Queue, Repeat, Worker, WorkerOptions,
};

#[derive(serde::Serialize, serde::Deserialize)]
struct Email {
    to: String,
}

#[tokio::main]
async fn main() -> bullmq_wire::Result<()> {
    let conn = Connection::open("redis://127.0.0.1:6379").await?;
    let queue = Queue::new("emails", &conn).await?;
    let opts = JobOptions {
        attempts: Some(3),
        backoff: Some(Backoff::exponential(Duration::from_secs(1))),
        delay: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let id = queue
        .add(
            "send",
            &Email {
                to: "a@example.com".into(),
            },
            opts,
        )
        .await?;
    println!("added {id}");

    let worker = Worker::start_typed(
        "emails",
        &conn,
        WorkerOptions {
            concurrency: 50,
            ..Default::default()
        },
        |email: Email, _job| async move { Ok::<_, JobError>(format!("sent to {}", email.to)) },
    )
    .await?;
    worker.close().await;

    queue
        .upsert_job_scheduler(
            "nightly",
            &Repeat::cron("0 3 * * *").tz("Europe/Madrid"),
            JobTemplate::new("report", serde_json::json!({"kind": "daily"})),
        )
        .await?;
    queue
        .upsert_job_scheduler(
            "heartbeat",
            &Repeat::every(Duration::from_secs(10)),
            JobTemplate::default(),
        )
        .await?;

    let child =
        FlowJob::new("resize", "images", serde_json::json!({"size": 64})).opts(JobOptions {
            on_failure: Some(ParentOnFailure::FailParent),
            ..Default::default()
        });
    let _tree = FlowProducer::new(&conn)
        .add(FlowJob::new("publish", "posts", serde_json::json!({"post": 7})).child(child))
        .await?;
    Ok(())
}
