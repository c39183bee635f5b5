//! Idle workers: the wait on the queue's marker, the fetch that waits in
//! Redis behind it, closing while waiting, and waking the next idle
//! worker.

use std::sync::Arc;
use std::time::Duration;

use bullmq_wire::{JobOptions, JobState, NewJob, Queue, Worker, WorkerOptions};
use serde_json::json;

use crate::support::{ctx, eventually, queue_name, raw, wait_state, Ctx};

#[tokio::test]
async fn an_idle_worker_wakes_up_for_each_new_job() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let events = bullmq_wire::QueueEvents::start(&q, &ctx.conn, bullmq_wire::StartAt::Now)
        .await
        .unwrap();
    // a long drain delay: a missed wake-up would show as a multi-second
    // wait; free slots left while a job runs make the worker settle and
    // fetch while its marker wait is still pending
    let opts = WorkerOptions {
        drain_delay: Duration::from_secs(20),
        concurrency: 8,
        ..Default::default()
    };
    let worker = Worker::start(&q, &ctx.conn, opts, |job| async move { Ok(job.data) })
        .await
        .unwrap();
    for i in 0..100u64 {
        if i % 3 == 0 {
            // let the worker go back to blocking on the marker
            tokio::time::sleep(Duration::from_millis(i % 7)).await;
        }
        let started = std::time::Instant::now();
        let id = queue
            .add("x", &json!(i), JobOptions::default())
            .await
            .unwrap();
        let done = events
            .wait_until_finished(&id, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(done, bullmq_wire::Finished::Completed(json!(i)));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "job {i} waited {:?}",
            started.elapsed()
        );
    }
    worker.close().await;
}

/// The `CLIENT LIST` line of the worker named `name`'s blocking connection
/// while it is blocked in `BZPOPMIN`.
async fn blocked_line(ctx: &Ctx, name: &str) -> Option<String> {
    let list: String = raw(ctx, redis::cmd("CLIENT").arg("LIST")).await;
    list.lines()
        .find(|l| {
            l.contains(&format!(":w:{name} "))
                && l.contains("cmd=bzpopmin")
                && l.contains("flags=b")
        })
        .map(str::to_string)
}

/// An echo worker named `name`, with a drain delay long enough that a
/// missed wake-up shows, once it is blocked on the marker; with the
/// `CLIENT LIST` line of its blocking connection.
async fn idle_worker(ctx: &Ctx, q: &str, name: &str) -> (Worker, String) {
    let opts = WorkerOptions {
        name: Some(name.into()),
        drain_delay: Duration::from_secs(60),
        ..Default::default()
    };
    let worker = Worker::start(q, &ctx.conn, opts, |job| async move { Ok(job.data) })
        .await
        .unwrap();
    let line = eventually(20, "the worker to block on the marker", || {
        blocked_line(ctx, name)
    })
    .await;
    (worker, line)
}

/// An idle worker sends its fetch right behind `BZPOPMIN`, on the same
/// connection, so Redis runs it as soon as a job's marker ends the wait:
/// a new job starts one round trip sooner than with a fetch sent after
/// the marker's answer.
#[tokio::test]
async fn an_idle_worker_fetches_on_its_blocking_connection_as_the_wait_ends() {
    use futures::StreamExt as _;

    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let (worker, blocked) = idle_worker(&ctx, &q, "behind").await;
    let addr = blocked
        .split(' ')
        .find_map(|f| f.strip_prefix("addr="))
        .expect("addr= in CLIENT LIST")
        .to_string();

    let client = redis::Client::open(ctx.server.url()).unwrap();
    let monitor = client.get_async_monitor().await.unwrap();
    let mut lines = monitor.into_on_message::<String>();
    let id = queue
        .add("x", &json!(7), JobOptions::default())
        .await
        .unwrap();
    wait_state(&queue, &id, JobState::Completed).await;
    // what the blocking connection sent once the job's marker woke it (a
    // Redis that runs a served BZPOPMIN again may show it first)
    let mut from_blocking = Vec::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(5), lines.next()).await {
        if line.contains(&format!(" {addr}] ")) {
            let command = line.split('"').nth(1).unwrap_or_default().to_uppercase();
            let fetched = command == "EVALSHA";
            from_blocking.push(command);
            if fetched || from_blocking.len() == 3 {
                break;
            }
        }
    }
    assert!(
        from_blocking.iter().any(|c| c == "EVALSHA"),
        "the fetch that took the job went out on the blocking connection, behind the wait: {from_blocking:?}"
    );
    worker.close().await;
}

/// Closing an idle worker ends its wait at once (`CLIENT UNBLOCK`), even
/// with a long drain delay, so the fetch behind the wait answers.
#[tokio::test]
async fn closing_an_idle_worker_does_not_wait_out_its_block() {
    let ctx = ctx().await;
    let q = queue_name();
    let (worker, _) = idle_worker(&ctx, &q, "idle").await;
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(20), worker.close())
        .await
        .expect("close ended the 60 s wait");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "close took {:?}",
        started.elapsed()
    );
}

/// Jobs added while idle workers close are never left `active` under a
/// lock nobody holds: a closing worker's last fetch (the one behind its
/// wait) hands what it took back to `wait`, or the job ran before the
/// close.
#[tokio::test]
async fn jobs_added_while_an_idle_worker_closes_are_not_left_active() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let mut ids = Vec::new();
    for round in 0..12u64 {
        let (worker, _) = idle_worker(&ctx, &q, &format!("closing{round}")).await;
        // the add and the close race; a few rounds let the add go first
        let add = {
            let queue = queue.clone();
            tokio::spawn(async move {
                if round % 3 == 0 {
                    tokio::time::sleep(Duration::from_millis(round)).await;
                }
                queue.add("x", &json!(round), JobOptions::default()).await
            })
        };
        if round % 3 == 1 {
            tokio::time::sleep(Duration::from_millis(round)).await;
        }
        tokio::time::timeout(Duration::from_secs(20), worker.close())
            .await
            .expect("close ends");
        let id = add.await.unwrap().unwrap();
        let state = queue.get_job_state(&id).await.unwrap();
        assert!(
            matches!(state, JobState::Waiting | JobState::Completed),
            "round {round}: job {id} is {state} after its worker closed"
        );
        let lock: Option<String> =
            raw(&ctx, redis::cmd("GET").arg(format!("bull:{q}:{id}:lock"))).await;
        assert_eq!(lock, None, "round {round}: no lock outlives the worker");
        ids.push(id);
    }
    // whatever went back to wait is taken by the next worker
    let worker = Worker::start(&q, &ctx.conn, WorkerOptions::default(), |job| async move {
        Ok(job.data)
    })
    .await
    .unwrap();
    for id in &ids {
        wait_state(&queue, id, JobState::Completed).await;
    }
    worker.close().await;
}

/// One marker for a batch of jobs wakes one idle worker; when its fetch
/// leaves jobs behind it sets the marker again for the next idle worker,
/// and when it takes the last ones it does not.
#[tokio::test]
async fn a_fetch_that_leaves_jobs_behind_wakes_the_next_idle_worker() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    // every handler waits until all four jobs have started: two workers of
    // concurrency 2 can only get there if the second one is woken too
    let started = Arc::new(tokio::sync::Barrier::new(4));
    let mut workers = Vec::new();
    for name in ["first", "second"] {
        let started = started.clone();
        let opts = WorkerOptions {
            name: Some(name.into()),
            concurrency: 2,
            drain_delay: Duration::from_secs(60),
            ..Default::default()
        };
        let worker = Worker::start(&q, &ctx.conn, opts, move |job| {
            let started = started.clone();
            async move {
                started.wait().await;
                Ok(job.data)
            }
        })
        .await
        .unwrap();
        eventually(20, "the worker to block on the marker", || {
            blocked_line(&ctx, name)
        })
        .await;
        workers.push(worker);
    }
    let jobs: Vec<NewJob> = (0..4)
        .map(|i| NewJob::new("b", &json!(i), JobOptions::default()))
        .collect();
    let ids = queue.add_bulk(jobs).await.unwrap();
    for id in &ids {
        wait_state(&queue, id, JobState::Completed).await;
    }
    // the queue is empty and both workers wait again: no marker is left
    // for a job that is not there
    for name in ["first", "second"] {
        eventually(20, "the worker to block on the marker again", || {
            blocked_line(&ctx, name)
        })
        .await;
    }
    let marker: i64 = raw(&ctx, redis::cmd("ZCARD").arg(format!("bull:{q}:marker"))).await;
    assert_eq!(marker, 0, "no marker without a job");
    for w in workers {
        w.close().await;
    }
}

/// The fetch behind the wait is an `EVALSHA`: when Redis no longer knows
/// the script (a restart, `SCRIPT FLUSH`), the job its marker announced
/// is fetched again with the script's body, not left for the next wake-up.
#[tokio::test]
async fn an_idle_worker_takes_a_job_after_redis_forgot_its_scripts() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let (worker, _) = idle_worker(&ctx, &q, "flushed").await;
    for round in 0..3u64 {
        if round > 0 {
            eventually(20, "the worker to block on the marker again", || {
                blocked_line(&ctx, "flushed")
            })
            .await;
        }
        let _: () = raw(&ctx, redis::cmd("SCRIPT").arg("FLUSH")).await;
        let started = std::time::Instant::now();
        let id = queue
            .add("x", &json!(round), JobOptions::default())
            .await
            .unwrap();
        wait_state(&queue, &id, JobState::Completed).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "round {round}: the job waited {:?}",
            started.elapsed()
        );
    }
    worker.close().await;
}
