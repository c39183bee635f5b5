//! Processing: results, retries and backoff, unrecoverable failures,
//! ordering, timeouts, stalls, closing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bullmq_wire::{
    Backoff, JobError, JobOptions, JobState, KeepJobs, NewJob, Queue, Worker, WorkerOptions,
};
use serde_json::{json, Value};

use crate::support::{ctx, eventually, queue_name, raw, wait_state};

#[tokio::test]
async fn completes_jobs_with_their_return_value() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let id = queue
        .add("echo", &json!({"x": 1}), JobOptions::default())
        .await
        .unwrap();
    let opts = WorkerOptions {
        name: Some("w1".into()),
        ..Default::default()
    };
    let worker = Worker::start(&q, &ctx.conn, opts, |job| async move {
        Ok(json!({"echo": job.data}))
    })
    .await
    .unwrap();
    wait_state(&queue, &id, JobState::Completed).await;
    let job = queue.get_job(&id).await.unwrap().unwrap();
    assert_eq!(job.returnvalue, Some(json!({"echo": {"x": 1}})));
    assert_eq!(job.attempts_made, 1);
    assert_eq!(job.attempts_started, 1);
    assert_eq!(job.processed_by.as_deref(), Some("w1"));
    assert!(job.finished_on.is_some() && job.processed_on.is_some());
    let workers = queue.get_workers().await.unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].name.as_deref(), Some("w1"));
    let lock_exists: bool = raw(
        &ctx,
        redis::cmd("EXISTS").arg(format!("bull:{q}:{id}:lock")),
    )
    .await;
    assert!(!lock_exists, "the lock is released");
    worker.close().await;
    assert!(
        queue.get_workers().await.unwrap().is_empty(),
        "closing drops the named connection"
    );
}

#[tokio::test]
async fn retries_with_backoff_then_succeeds() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let opts = JobOptions {
        attempts: Some(3),
        backoff: Some(Backoff::fixed(Duration::from_millis(50))),
        ..Default::default()
    };
    let id = queue.add("fail", &json!({"times": 2}), opts).await.unwrap();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), |job| async move {
        if job.attempts_made < 2 {
            Err(JobError::new("demo failure"))
        } else {
            Ok(json!({"attempts": job.attempts_made + 1}))
        }
    })
    .await
    .unwrap();
    wait_state(&queue, &id, JobState::Completed).await;
    let job = queue.get_job(&id).await.unwrap().unwrap();
    assert_eq!(job.returnvalue, Some(json!({"attempts": 3})));
    assert_eq!(job.attempts_made, 3);
    assert_eq!(
        job.failed_reason.as_deref(),
        Some("demo failure"),
        "BullMQ keeps the last failure reason"
    );
    assert_eq!(job.stacktrace.len(), 2);
    assert_eq!(
        job.delay,
        Duration::ZERO,
        "promotion from delayed resets delay, as in BullMQ"
    );
    worker.close().await;
}

#[tokio::test]
async fn fails_for_good_when_attempts_run_out_or_unrecoverable() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let a = queue
        .add(
            "fail",
            &json!({}),
            JobOptions {
                attempts: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let b = queue
        .add(
            "unrecoverable",
            &json!({}),
            JobOptions {
                attempts: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), |job| async move {
        if job.name == "unrecoverable" {
            Err(JobError::unrecoverable("unrecoverable failure"))
        } else {
            Err(JobError::new("demo failure"))
        }
    })
    .await
    .unwrap();
    wait_state(&queue, &a, JobState::Failed).await;
    wait_state(&queue, &b, JobState::Failed).await;
    let a = queue.get_job(&a).await.unwrap().unwrap();
    assert_eq!(a.attempts_made, 2);
    assert_eq!(a.failed_reason.as_deref(), Some("demo failure"));
    let b = queue.get_job(&b).await.unwrap().unwrap();
    assert_eq!(b.attempts_made, 1, "no retry after an unrecoverable error");
    assert_eq!(b.failed_reason.as_deref(), Some("unrecoverable failure"));
    worker.close().await;
}

#[tokio::test]
async fn priority_then_fifo_order_like_bullmq() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let jobs = vec![
        NewJob::new(
            "p3",
            &json!({}),
            JobOptions {
                priority: Some(3),
                ..Default::default()
            },
        ),
        NewJob::new(
            "p1",
            &json!({}),
            JobOptions {
                priority: Some(1),
                ..Default::default()
            },
        ),
        NewJob::new("plain1", &json!({}), JobOptions::default()),
        NewJob::new(
            "p1b",
            &json!({}),
            JobOptions {
                priority: Some(1),
                ..Default::default()
            },
        ),
        NewJob::new("plain2", &json!({}), JobOptions::default()),
        NewJob::new(
            "lifo",
            &json!({}),
            JobOptions {
                lifo: true,
                ..Default::default()
            },
        ),
    ];
    queue.add_bulk(jobs).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), move |job| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push(job.name.clone());
            Ok(Value::Null)
        }
    })
    .await
    .unwrap();
    eventually(20, "six jobs", || async {
        (seen.lock().unwrap().len() == 6).then_some(())
    })
    .await;
    assert_eq!(
        *seen.lock().unwrap(),
        ["lifo", "plain1", "plain2", "p1", "p1b", "p3"]
    );
    worker.close().await;
}

#[tokio::test]
async fn concurrency_runs_jobs_in_parallel_and_removes_on_complete() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let jobs: Vec<NewJob> = (0..40)
        .map(|i| {
            NewJob::new(
                "c",
                &json!({"i": i}),
                JobOptions {
                    remove_on_complete: Some(KeepJobs::Count(5)),
                    ..Default::default()
                },
            )
        })
        .collect();
    queue.add_bulk(jobs).await.unwrap();
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let (n, p, d) = (now.clone(), peak.clone(), done.clone());
    let opts = WorkerOptions {
        concurrency: 10,
        ..Default::default()
    };
    let worker = Worker::start(&q, &ctx.conn, opts, move |_job| {
        let (n, p, d) = (n.clone(), p.clone(), d.clone());
        async move {
            let cur = n.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(cur, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            n.fetch_sub(1, Ordering::SeqCst);
            d.fetch_add(1, Ordering::SeqCst);
            Ok(Value::Null)
        }
    })
    .await
    .unwrap();
    eventually(30, "40 jobs done", || async {
        (done.load(Ordering::SeqCst) == 40).then_some(())
    })
    .await;
    eventually(10, "completed set trimmed to 5", || async {
        let c = queue
            .get_job_counts(&[JobState::Completed, JobState::Active])
            .await
            .unwrap();
        (c[&JobState::Completed] == 5 && c[&JobState::Active] == 0).then_some(())
    })
    .await;
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak > 1 && peak <= 10, "peak concurrency {peak}");
    worker.close().await;
}

#[tokio::test]
async fn delayed_jobs_run_when_due() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), move |job| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push(job.name.clone());
            Ok(Value::Null)
        }
    })
    .await
    .unwrap();
    queue
        .add(
            "late",
            &json!({}),
            JobOptions {
                delay: Some(Duration::from_millis(600)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    queue
        .add(
            "early",
            &json!({}),
            JobOptions {
                delay: Some(Duration::from_millis(300)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    queue
        .add("now", &json!({}), JobOptions::default())
        .await
        .unwrap();
    eventually(20, "three jobs", || async {
        (seen.lock().unwrap().len() == 3).then_some(())
    })
    .await;
    assert_eq!(*seen.lock().unwrap(), ["now", "early", "late"]);
    worker.close().await;
}

#[tokio::test]
async fn job_timeout_fails_the_attempt_with_a_clear_reason() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let id = queue
        .add(
            "slow",
            &json!({}),
            JobOptions {
                timeout: Some(Duration::from_millis(100)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), |_job| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(Value::Null)
    })
    .await
    .unwrap();
    wait_state(&queue, &id, JobState::Failed).await;
    let job = queue.get_job(&id).await.unwrap().unwrap();
    assert_eq!(
        job.failed_reason.as_deref(),
        Some("job timed out after 100 ms")
    );
    worker.close().await;
}

#[tokio::test]
async fn panicking_handler_fails_the_job_not_the_worker() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let bad = queue
        .add("boom", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let good = queue
        .add("fine", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), |job| async move {
        if job.name == "boom" {
            panic!("kaboom");
        }
        Ok(json!(1))
    })
    .await
    .unwrap();
    wait_state(&queue, &good, JobState::Completed).await;
    let job = queue.get_job(&bad).await.unwrap().unwrap();
    assert_eq!(
        job.failed_reason.as_deref(),
        Some("handler panicked: kaboom")
    );
    worker.close().await;
}

#[tokio::test]
async fn stalled_job_is_recovered_then_failed_past_max_stalled_count() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let id = queue
        .add(
            "hang",
            &json!({}),
            JobOptions {
                attempts: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // A job taken to active without a lock, as if its worker died (kill -9).
    let _: String = raw(
        &ctx,
        redis::cmd("RPOPLPUSH")
            .arg(format!("bull:{q}:wait"))
            .arg(format!("bull:{q}:active")),
    )
    .await;
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let opts = WorkerOptions {
        stalled_interval: Duration::from_millis(200),
        max_stalled_count: 0,
        ..Default::default()
    };
    let worker = Worker::start(&q, &ctx.conn, opts, move |_job| {
        s.fetch_add(1, Ordering::SeqCst);
        async move { Ok(Value::Null) }
    })
    .await
    .unwrap();
    wait_state(&queue, &id, JobState::Failed).await;
    let job = queue.get_job(&id).await.unwrap().unwrap();
    assert_eq!(
        job.failed_reason.as_deref(),
        Some("job stalled more than allowable limit")
    );
    assert_eq!(job.stalled_counter, 1);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "the handler never ran the deferred failure"
    );
    let events: Vec<(String, HashMap<String, String>)> = raw(
        &ctx,
        redis::cmd("XRANGE")
            .arg(format!("bull:{q}:events"))
            .arg("-")
            .arg("+"),
    )
    .await;
    assert!(events.iter().any(|(_, f)| f["event"] == "stalled"));
    worker.close().await;
}

#[tokio::test]
async fn close_finishes_running_jobs_and_close_within_hands_back() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let quick = queue
        .add("quick", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), move |_job| {
        s.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(json!("done"))
        }
    })
    .await
    .unwrap();
    eventually(10, "job started", || async {
        (started.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    worker.close().await;
    assert_eq!(
        queue.get_job_state(&quick).await.unwrap(),
        JobState::Completed,
        "close waited for the job"
    );

    let stuck = queue
        .add("stuck", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), move |_job| {
        s.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(Value::Null)
        }
    })
    .await
    .unwrap();
    eventually(10, "job started", || async {
        (started.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    worker.close_within(Duration::from_millis(100)).await;
    assert_eq!(
        queue.get_job_state(&stuck).await.unwrap(),
        JobState::Waiting,
        "handed back"
    );
    let job = queue.get_job(&stuck).await.unwrap().unwrap();
    assert_eq!(job.attempts_made, 0, "no attempt counted");
}

#[tokio::test]
async fn spawned_handlers_complete_and_are_handed_back_on_close() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let jobs: Vec<NewJob> = (0..20)
        .map(|i| NewJob::new("c", &json!({"i": i}), JobOptions::default()))
        .collect();
    queue.add_bulk(jobs).await.unwrap();
    let threads = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let t = threads.clone();
    let opts = WorkerOptions {
        concurrency: 4,
        spawn_handlers: true,
        ..Default::default()
    };
    let worker = Worker::start(&q, &ctx.conn, opts, move |job| {
        let t = t.clone();
        async move {
            t.lock().unwrap().insert(std::thread::current().id());
            if job.data["i"] == 19 {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Ok(Value::Null)
        }
    })
    .await
    .unwrap();
    eventually(20, "19 jobs completed", || async {
        (queue.get_job_counts(&[JobState::Completed]).await.unwrap()[&JobState::Completed] == 19)
            .then_some(())
    })
    .await;
    worker.close_within(Duration::from_millis(100)).await;
    let counts = queue
        .get_job_counts(&[JobState::Waiting, JobState::Active])
        .await
        .unwrap();
    assert_eq!(
        (counts[&JobState::Waiting], counts[&JobState::Active]),
        (1, 0),
        "the sleeping job was handed back"
    );
    assert!(!threads.lock().unwrap().is_empty());
}

/// The events stream stays near `opts.maxLenEvents` while jobs finish
/// (BullMQ trims it with `MAXLEN ~`, whole stream nodes at a time).
#[tokio::test]
async fn finishing_jobs_keeps_the_events_stream_trimmed() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let _: () = raw(
        &ctx,
        redis::cmd("HSET")
            .arg(format!("bull:{q}:meta"))
            .arg("opts.maxLenEvents")
            .arg(10),
    )
    .await;
    let jobs = (0..600)
        .map(|i| NewJob::new("n", &json!({ "i": i }), JobOptions::default()))
        .collect();
    queue.add_bulk(jobs).await.unwrap();
    let opts = WorkerOptions {
        concurrency: 20,
        ..Default::default()
    };
    let worker = Worker::start(&q, &ctx.conn, opts, |_job| async { Ok(json!(1)) })
        .await
        .unwrap();
    eventually(30, "600 completed jobs", || async {
        let n = queue.get_job_counts(&[JobState::Completed]).await.unwrap()[&JobState::Completed];
        (n == 600).then_some(())
    })
    .await;
    worker.close().await;
    // 2,400 events were written (added, waiting, active, completed); a
    // stream node holds 100 entries, so a trimmed stream keeps a few hundred
    let len: u64 = raw(&ctx, redis::cmd("XLEN").arg(format!("bull:{q}:events"))).await;
    assert!(len < 400, "events stream not trimmed: {len} entries");
    let newest: Vec<(String, HashMap<String, String>)> = raw(
        &ctx,
        redis::cmd("XREVRANGE")
            .arg(format!("bull:{q}:events"))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(5),
    )
    .await;
    assert!(
        newest.iter().any(|(_, e)| e["event"] == "completed"),
        "the newest events are kept: {newest:?}"
    );
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Greeting {
    name: String,
}

#[tokio::test]
async fn a_typed_worker_reads_typed_data_and_fails_a_misfit_without_retries() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let good = queue
        .add(
            "greet",
            &Greeting { name: "Ada".into() },
            JobOptions::default(),
        )
        .await
        .unwrap();
    let bad = queue
        .add(
            "greet",
            &json!({"nom": "Ada"}),
            JobOptions {
                attempts: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let worker = Worker::start_typed(
        &q,
        &ctx.conn,
        WorkerOptions::default(),
        |g: Greeting, _job| async move { Ok::<_, JobError>(format!("hello {}", g.name)) },
    )
    .await
    .unwrap();
    wait_state(&queue, &good, JobState::Completed).await;
    wait_state(&queue, &bad, JobState::Failed).await;
    worker.close().await;
    let done = queue.get_job(&good).await.unwrap().unwrap();
    assert_eq!(done.returnvalue, Some(json!("hello Ada")));
    let failed = queue.get_job(&bad).await.unwrap().unwrap();
    assert_eq!(failed.attempts_made, 1, "a misfit payload is not retried");
    assert!(
        failed
            .failed_reason
            .as_deref()
            .is_some_and(|r| r.contains("does not fit")),
        "{:?}",
        failed.failed_reason
    );
}
