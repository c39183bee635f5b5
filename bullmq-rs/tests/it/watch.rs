//! Watching one job from outside its queue: what a `JobSnapshot` reads of
//! hashes our scripts write, and the keyspace channel a `JobKey` names.

use std::sync::Arc;
use std::time::Duration;

use bullmq_wire::{
    keyspace_flags_for_watching, JobError, JobKey, JobOptions, JobSignal, JobSnapshot, JobState,
    JobUpdate, Queue, Worker, WorkerOptions,
};
use futures::{Stream, StreamExt};
use serde_json::json;
use tokio::sync::Notify;

use crate::support::{ctx, eventually, queue_name, raw, wait_state, Ctx};

async fn snapshot(ctx: &Ctx, key: &JobKey) -> JobSnapshot {
    JobSnapshot::read(&mut ctx.conn.command_connection(), key)
        .await
        .unwrap()
}

/// A snapshot tells a waiting job, its progress while it runs, and its
/// end: completed with its value, or failed with its reason and attempts.
#[tokio::test]
async fn a_snapshot_follows_a_job_to_its_end() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let key = |id: &str| JobKey::new(ctx.conn.prefix(), &q, id);

    assert!(!snapshot(&ctx, &key("missing")).await.exists());
    let ok = queue
        .add("ok", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let waiting = snapshot(&ctx, &key(&ok)).await;
    assert!(waiting.exists());
    assert_eq!(waiting.latest(), None, "a waiting job has nothing to push");

    let proceed = Arc::new(Notify::new());
    let release = proceed.clone();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), move |mut job| {
        let proceed = proceed.clone();
        async move {
            match job.name.as_str() {
                "ok" => {
                    job.update_progress(json!({"step": 1})).await?;
                    proceed.notified().await;
                    Ok(json!({"done": true}))
                }
                _ => Err(JobError::new("boom")),
            }
        }
    })
    .await
    .unwrap();

    let progress = eventually(20, "the progress to be stored", || async {
        snapshot(&ctx, &key(&ok)).await.latest()
    })
    .await;
    assert_eq!(progress, JobUpdate::Progress(json!({"step": 1})));
    release.notify_one();
    wait_state(&queue, &ok, JobState::Completed).await;
    let done = snapshot(&ctx, &key(&ok)).await;
    assert_eq!(
        done.end(),
        Some(JobUpdate::Completed(json!({"done": true}).into()))
    );
    assert_eq!(done.latest(), done.end());

    let opts = JobOptions {
        attempts: Some(2),
        ..Default::default()
    };
    let bad = queue.add("bad", &json!({}), opts).await.unwrap();
    wait_state(&queue, &bad, JobState::Failed).await;
    assert_eq!(
        snapshot(&ctx, &key(&bad)).await.end(),
        Some(JobUpdate::Failed {
            reason: "boom".into(),
            attempts_made: 2
        })
    );
    worker.close().await;
}

/// The next keyspace message that matters to a watcher.
async fn next_signal(messages: &mut (impl Stream<Item = redis::Msg> + Unpin)) -> JobSignal {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), messages.next())
            .await
            .expect("a keyspace message in time")
            .expect("the subscription is open");
        let event: String = msg.get_payload().unwrap();
        if let Some(signal) = JobSignal::from_keyspace(&event) {
            return signal;
        }
    }
}

/// The channel a `JobKey` names carries Redis' keyspace events for the
/// job's hash, once the flags watching needs are set: an add is a change,
/// a removal is a removal.
#[tokio::test]
async fn the_keyspace_channel_tells_changes_and_removal() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let mut con = ctx.conn.command_connection();
    let current: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(&mut con)
        .await
        .unwrap();
    let flags = keyspace_flags_for_watching(current.get(1).map_or("", String::as_str))
        .expect("a fresh server has no keyspace events on");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg(&flags)
        .query_async(&mut con)
        .await
        .unwrap();

    let key = JobKey::new(ctx.conn.prefix(), &q, "watched");
    let client = redis::Client::open(ctx.server.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(key.keyspace_channel(0)).await.unwrap();
    let mut messages = pubsub.on_message();

    let opts = JobOptions {
        job_id: Some("watched".into()),
        ..Default::default()
    };
    queue.add("w", &json!({}), opts).await.unwrap();
    assert_eq!(next_signal(&mut messages).await, JobSignal::Changed);
    assert!(queue.remove("watched").await.unwrap());
    assert_eq!(next_signal(&mut messages).await, JobSignal::Removed);
}

/// With `publish_results`, a completion is published on `job:{jobId}` by
/// the script that completes the job, before its hash is written (the
/// message comes before the hash's keyspace event); a failure is not, and
/// a worker without the option publishes nothing.
#[tokio::test]
async fn completions_are_published_when_asked() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let mut flags = redis::cmd("CONFIG");
    flags.arg("SET").arg("notify-keyspace-events").arg("Kh");
    let _: () = raw(&ctx, &mut flags).await;
    let client = redis::Client::open(ctx.server.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.psubscribe("job:*").await.unwrap();
    pubsub.psubscribe("__keyspace@0__:*").await.unwrap();
    let mut messages = pubsub.into_on_message();

    let handler = |mut job: bullmq_wire::Job| async move {
        match job.name.as_str() {
            "ok" => {
                job.update_progress(json!(50)).await?;
                Ok(json!({"n": job.data["n"]}))
            }
            _ => Err(JobError::new("no")),
        }
    };
    let publishing = WorkerOptions {
        publish_results: true,
        ..Default::default()
    };
    let worker = Worker::start(&q, &ctx.conn, publishing, handler)
        .await
        .unwrap();
    let ok = queue
        .add("ok", &json!({"n": 1}), JobOptions::default())
        .await
        .unwrap();
    let bad = queue
        .add("bad", &json!({}), JobOptions::default())
        .await
        .unwrap();
    wait_state(&queue, &ok, JobState::Completed).await;
    wait_state(&queue, &bad, JobState::Failed).await;
    worker.close().await;

    let quiet = WorkerOptions::default();
    let worker = Worker::start(&q, &ctx.conn, quiet, handler).await.unwrap();
    let unpublished = queue
        .add("ok", &json!({"n": 2}), JobOptions::default())
        .await
        .unwrap();
    wait_state(&queue, &unpublished, JobState::Completed).await;
    worker.close().await;

    // everything above has been published by now; a last message marks the end
    let mut publish = redis::cmd("PUBLISH");
    publish.arg("job:end").arg("end");
    let _: i64 = raw(&ctx, &mut publish).await;
    let mut seen = Vec::new();
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(20), messages.next())
        .await
        .expect("messages up to the marker")
    {
        let channel = msg.get_channel_name().to_string();
        if channel == "job:end" {
            break;
        }
        let payload: String = msg.get_payload().unwrap();
        seen.push((channel, payload));
    }
    let mut published: Vec<&(String, String)> =
        seen.iter().filter(|(c, _)| c.starts_with("job:")).collect();
    published.sort();
    let mut expected = [
        (
            format!("job:{ok}"),
            format!(r#"{{"type":"result","jobId":"{ok}","result":{{"n":1}}}}"#),
        ),
        (
            format!("job:{ok}"),
            format!(r#"{{"type":"progress","jobId":"{ok}","progress":50}}"#),
        ),
        (
            format!("job:{bad}"),
            format!(r#"{{"type":"error","jobId":"{bad}","error":"no","attemptsMade":1}}"#),
        ),
    ];
    expected.sort();
    assert_eq!(published, expected.iter().collect::<Vec<_>>(), "{seen:?}");
    // the result came before the hash's last write (the completion)
    let hash_channel = JobKey::new(ctx.conn.prefix(), &q, &ok).keyspace_channel(0);
    let result_at = seen.iter().position(|(c, _)| *c == format!("job:{ok}"));
    let last_write = seen.iter().rposition(|(c, _)| *c == hash_channel);
    assert!(result_at < last_write, "{seen:?}");
}

/// The ends a worker publishes on the jobs' own channel
/// (`JobOptions::reply_to`, a gateway's reply channel) go as one message
/// per script call: the JSON array of the ends settled together, while
/// `job:{jobId}` still gets each job's own message.
#[tokio::test]
async fn ends_settled_together_share_one_reply_message() {
    const JOBS: usize = 5;
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let client = redis::Client::open(ctx.server.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("replies").await.unwrap();
    pubsub.psubscribe("job:*").await.unwrap();
    let mut messages = pubsub.into_on_message();

    let mut ids = Vec::new();
    for i in 0..JOBS {
        let opts = JobOptions {
            reply_to: Some("replies".into()),
            ..Default::default()
        };
        let name = if i == 0 { "bad" } else { "ok" };
        ids.push(queue.add(name, &json!({"n": i}), opts).await.unwrap());
    }
    // every handler returns once all have started: the worker takes the
    // five in one fetch and settles them in one call
    let together = Arc::new(tokio::sync::Barrier::new(JOBS));
    let handler = move |job: bullmq_wire::Job| {
        let together = together.clone();
        async move {
            together.wait().await;
            match job.name.as_str() {
                "ok" => Ok(json!({"n": job.data["n"]})),
                _ => Err(JobError::new("no")),
            }
        }
    };
    let opts = WorkerOptions {
        concurrency: JOBS,
        publish_results: true,
        ..Default::default()
    };
    let worker = Worker::start(&q, &ctx.conn, opts, handler).await.unwrap();
    for id in &ids[1..] {
        wait_state(&queue, id, JobState::Completed).await;
    }
    wait_state(&queue, &ids[0], JobState::Failed).await;
    worker.close().await;

    let mut publish = redis::cmd("PUBLISH");
    publish.arg("job:end").arg("end");
    let _: i64 = raw(&ctx, &mut publish).await;
    let (mut replies, mut per_job) = (Vec::new(), 0);
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(20), messages.next())
        .await
        .expect("messages up to the marker")
    {
        match msg.get_channel_name() {
            "job:end" => break,
            "replies" => replies.push(msg.get_payload::<String>().unwrap()),
            _ => per_job += 1,
        }
    }
    assert_eq!(per_job, JOBS, "job:{{jobId}} gets each end");
    assert_eq!(
        replies.len(),
        1,
        "one message on the reply channel: {replies:?}"
    );
    let ends: serde_json::Value = serde_json::from_str(&replies[0]).unwrap();
    let mut ends = ends.as_array().expect("an array of ends").clone();
    ends.sort_by_key(|e| e["jobId"].as_str().unwrap().parse::<u64>().unwrap());
    let mut expected =
        vec![json!({"type": "error", "jobId": ids[0], "error": "no", "attemptsMade": 1})];
    for (i, id) in ids.iter().enumerate().skip(1) {
        expected.push(json!({"type": "result", "jobId": id, "result": {"n": i}}));
    }
    assert_eq!(ends, expected);
}
