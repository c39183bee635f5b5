//! Producing jobs: the Redis state each kind of add leaves, batching, and
//! bad input rejected before any write.

use std::collections::HashMap;
use std::time::Duration;

use bullmq_wire::{Backoff, Error, JobOptions, JobState, KeepJobs, NewJob, Queue};
use serde_json::json;

use crate::support::{ctx, queue_name, raw};

#[tokio::test]
async fn standard_add_leaves_bullmq_state() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let opts = JobOptions {
        attempts: Some(3),
        backoff: Some(Backoff::exponential(Duration::from_secs(1))),
        remove_on_complete: Some(KeepJobs::Count(10)),
        keep_logs: Some(5),
        ..Default::default()
    };
    let id = queue.add("std", &json!({"a": 1}), opts).await.unwrap();
    assert_eq!(id, "1");

    let hash: HashMap<String, String> =
        raw(&ctx, redis::cmd("HGETALL").arg(format!("bull:{q}:1"))).await;
    assert_eq!(hash["name"], "std");
    assert_eq!(hash["data"], r#"{"a":1}"#);
    assert_eq!(hash["delay"], "0");
    assert_eq!(hash["priority"], "0");
    let stored: serde_json::Value = serde_json::from_str(&hash["opts"]).unwrap();
    assert_eq!(
        stored,
        json!({"attempts":3,"backoff":{"type":"exponential","delay":1000},"removeOnComplete":10,"kl":5})
    );
    let wait: Vec<String> = raw(
        &ctx,
        redis::cmd("LRANGE")
            .arg(format!("bull:{q}:wait"))
            .arg(0)
            .arg(-1),
    )
    .await;
    assert_eq!(wait, vec!["1"]);
    let marker: Vec<(String, f64)> = raw(
        &ctx,
        redis::cmd("ZRANGE")
            .arg(format!("bull:{q}:marker"))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES"),
    )
    .await;
    assert_eq!(marker, vec![("0".to_string(), 0.0)]);
    let meta: HashMap<String, String> =
        raw(&ctx, redis::cmd("HGETALL").arg(format!("bull:{q}:meta"))).await;
    assert_eq!(meta["version"], "bullmq:6.7.0");
    assert_eq!(meta["opts.maxLenEvents"], "10000");
    let events: Vec<(String, HashMap<String, String>)> = raw(
        &ctx,
        redis::cmd("XRANGE")
            .arg(format!("bull:{q}:events"))
            .arg("-")
            .arg("+"),
    )
    .await;
    let names: Vec<&str> = events.iter().map(|(_, f)| f["event"].as_str()).collect();
    assert_eq!(names, ["added", "waiting"]);
    assert_eq!(events[0].1["name"], "std");
}

#[tokio::test]
async fn prioritized_delayed_and_lifo_scores() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let p = queue
        .add(
            "p",
            &json!({}),
            JobOptions {
                priority: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let t = 1_795_791_213_571_i64;
    let d = queue
        .add(
            "d",
            &json!({}),
            JobOptions {
                delay: Some(Duration::from_secs(60)),
                timestamp: Some(t),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    queue
        .add("fifo", &json!({}), JobOptions::default())
        .await
        .unwrap();
    queue
        .add(
            "l",
            &json!({}),
            JobOptions {
                lifo: true,
                job_id: Some("custom".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let prio: f64 = raw(
        &ctx,
        redis::cmd("ZSCORE")
            .arg(format!("bull:{q}:prioritized"))
            .arg(&p),
    )
    .await;
    assert_eq!(prio, 5.0 * 4_294_967_296.0 + 1.0);
    let delayed: f64 = raw(
        &ctx,
        redis::cmd("ZSCORE")
            .arg(format!("bull:{q}:delayed"))
            .arg(&d),
    )
    .await;
    assert_eq!(delayed, (t + 60_000) as f64 * 4096.0);
    let marker1: f64 = raw(
        &ctx,
        redis::cmd("ZSCORE")
            .arg(format!("bull:{q}:marker"))
            .arg("1"),
    )
    .await;
    assert_eq!(marker1, (t + 60_000) as f64);
    let wait: Vec<String> = raw(
        &ctx,
        redis::cmd("LRANGE")
            .arg(format!("bull:{q}:wait"))
            .arg(0)
            .arg(-1),
    )
    .await;
    assert_eq!(
        wait,
        vec!["3", "custom"],
        "FIFO at the head, LIFO at the tail"
    );
    let counts = queue.get_job_counts(&[]).await.unwrap();
    assert_eq!(counts[&JobState::Prioritized], 1);
    assert_eq!(counts[&JobState::Delayed], 1);
    assert_eq!(counts[&JobState::Waiting], 2);
    assert_eq!(queue.get_job_state(&d).await.unwrap(), JobState::Delayed);
    assert_eq!(
        queue.get_job_state("nope").await.unwrap(),
        JobState::Unknown
    );
}

#[tokio::test]
async fn duplicate_custom_id_returns_the_existing_job() {
    let ctx = ctx().await;
    let queue = Queue::new(&queue_name(), &ctx.conn).await.unwrap();
    let opts = JobOptions {
        job_id: Some("order-7".into()),
        ..Default::default()
    };
    assert_eq!(
        queue
            .add("a", &json!({"n": 1}), opts.clone())
            .await
            .unwrap(),
        "order-7"
    );
    assert_eq!(
        queue.add("a", &json!({"n": 2}), opts).await.unwrap(),
        "order-7"
    );
    let job = queue.get_job("order-7").await.unwrap().unwrap();
    assert_eq!(job.data, json!({"n": 1}), "the first add wins");
    assert_eq!(
        queue.get_job_counts(&[JobState::Waiting]).await.unwrap()[&JobState::Waiting],
        1
    );
}

#[tokio::test]
async fn bulk_add_finds_custom_ids_that_exist_or_repeat_within_the_batch() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let with_id = |id: &str| JobOptions {
        job_id: Some(id.into()),
        ..Default::default()
    };
    queue
        .add("a", &json!({"n": 0}), with_id("old"))
        .await
        .unwrap();
    // one EXISTS finds nothing new here: the repeat must still be seen
    let fresh = vec![
        NewJob::new("a", &json!({"n": 1}), with_id("x")),
        NewJob::new("a", &json!({"n": 2}), JobOptions::default()),
        NewJob::new("a", &json!({"n": 3}), with_id("x")),
    ];
    assert_eq!(queue.add_bulk(fresh).await.unwrap(), ["x", "3", "x"]);
    // one that exists: each is checked on its own
    let mixed = vec![
        NewJob::new("a", &json!({"n": 4}), with_id("y")),
        NewJob::new("a", &json!({"n": 5}), with_id("old")),
        NewJob::new("a", &json!({"n": 6}), with_id("y")),
    ];
    assert_eq!(queue.add_bulk(mixed).await.unwrap(), ["y", "old", "y"]);
    for (id, n) in [("old", 0), ("x", 1), ("y", 4)] {
        let job = queue.get_job(id).await.unwrap().unwrap();
        assert_eq!(job.data, json!({"n": n}), "the first add of {id} wins");
    }
    let counter: i64 = raw(&ctx, redis::cmd("GET").arg(format!("bull:{q}:id"))).await;
    assert_eq!(counter, 7, "every job counts once");
    let events: Vec<redis::Value> = raw(
        &ctx,
        redis::cmd("XRANGE")
            .arg(format!("bull:{q}:events"))
            .arg("-")
            .arg("+"),
    )
    .await;
    let duplicated = format!("{events:?}").matches("duplicated").count();
    assert_eq!(duplicated, 3);
}

#[tokio::test]
async fn bulk_add_is_one_batch_in_order() {
    let ctx = ctx().await;
    let queue = Queue::new(&queue_name(), &ctx.conn).await.unwrap();
    let jobs: Vec<NewJob> = (0..50)
        .map(|i| NewJob::new("b", &json!({"i": i}), JobOptions::default()))
        .collect();
    let ids = queue.add_bulk(jobs).await.unwrap();
    assert_eq!(ids.len(), 50);
    assert_eq!(ids[0], "1");
    assert_eq!(ids[49], "50");
    let jobs = queue
        .get_jobs(&[JobState::Waiting], 0, -1, true)
        .await
        .unwrap();
    let order: Vec<i64> = jobs.iter().map(|j| j.data["i"].as_i64().unwrap()).collect();
    assert_eq!(
        order,
        (0..50).collect::<Vec<_>>(),
        "ascending = oldest first"
    );
}

#[tokio::test]
async fn bad_input_is_rejected_and_writes_nothing() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let cases = [
        JobOptions {
            job_id: Some("42".into()),
            ..Default::default()
        },
        JobOptions {
            job_id: Some("a:b".into()),
            ..Default::default()
        },
        JobOptions {
            priority: Some(2_097_152),
            ..Default::default()
        },
        JobOptions {
            backoff: Some(Backoff::fixed(Duration::from_millis(5)).with_jitter(2.0)),
            ..Default::default()
        },
    ];
    for opts in cases {
        let err = queue.add("x", &json!({}), opts.clone()).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { .. }),
            "{opts:?} -> {err}"
        );
    }
    let err = queue
        .add_json("x", "{not json", JobOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                what: "job data",
                ..
            }
        ),
        "{err}"
    );
    // one bad job in a batch rejects the whole batch
    let batch = vec![
        NewJob::new("ok", &json!({}), JobOptions::default()),
        NewJob::new(
            "bad",
            &json!({}),
            JobOptions {
                priority: Some(-1),
                ..Default::default()
            },
        ),
    ];
    assert!(queue.add_bulk(batch).await.is_err());
    let keys: Vec<String> = raw(&ctx, redis::cmd("KEYS").arg(format!("bull:{q}:*"))).await;
    assert_eq!(
        keys,
        vec![format!("bull:{q}:meta")],
        "nothing but the queue's meta was written"
    );
    assert!(matches!(
        Queue::new("a:b", &ctx.conn).await,
        Err(Error::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn hash_tagged_prefix_works() {
    let ctx = ctx().await;
    let conn = bullmq_wire::Connection::connect(
        bullmq_wire::RedisOptions::new(ctx.server.url()).with_prefix("{bull}"),
    )
    .await
    .unwrap();
    let q = queue_name();
    let queue = Queue::new(&q, &conn).await.unwrap();
    let id = queue
        .add("t", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let exists: bool = raw(&ctx, redis::cmd("EXISTS").arg(format!("{{bull}}:{q}:{id}"))).await;
    assert!(exists);
    assert_eq!(queue.qualified_name(), format!("{{bull}}:{q}"));
}

/// Concurrent adds through an `AddBatcher` share script calls, and each
/// add still gets its own answer: its id, or its own validation error.
#[tokio::test]
async fn batcher_coalesces_concurrent_adds() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let batcher = bullmq_wire::AddBatcher::new(queue.clone());
    let script_calls = || async {
        let info: String = raw(&ctx, redis::cmd("INFO").arg("commandstats")).await;
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = script_calls().await;
    let mut tasks = Vec::new();
    for i in 0..500 {
        let b = batcher.clone();
        tasks.push(tokio::spawn(async move {
            let opts = match i {
                7 => JobOptions {
                    priority: Some(-1),
                    ..Default::default()
                },
                8 => JobOptions {
                    job_id: Some("dup".into()),
                    ..Default::default()
                },
                _ => JobOptions::default(),
            };
            b.add("n", &json!({ "i": i }), opts).await
        }));
    }
    let mut ids = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match (i, t.await.unwrap()) {
            (7, Err(Error::InvalidInput { what, .. })) => assert_eq!(what, "priority"),
            (7, other) => panic!("the bad job must fail alone, got {other:?}"),
            (_, Ok(id)) => ids.push(id),
            (i, Err(e)) => panic!("add {i} failed: {e}"),
        }
    }
    let calls = script_calls().await - before;
    assert!(calls <= 50, "500 concurrent adds took {calls} script calls");
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 499, "every added job has its own id");
    assert!(ids.contains(&"dup".to_string()));
    assert_eq!(
        queue.get_job_counts(&[JobState::Waiting]).await.unwrap()[&JobState::Waiting],
        499
    );
    // a resend of a custom id finds the existing job, as `Queue::add` does
    assert_eq!(
        batcher
            .add(
                "n",
                &json!({}),
                JobOptions {
                    job_id: Some("dup".into()),
                    ..Default::default()
                }
            )
            .await
            .unwrap(),
        "dup"
    );
    assert_eq!(
        queue.get_job_counts(&[JobState::Waiting]).await.unwrap()[&JobState::Waiting],
        499
    );
}

/// More adds than the batcher queues (4,096) while Redis holds its calls:
/// the extra adds wait for room instead of failing, and every job lands.
#[tokio::test]
async fn batcher_adds_beyond_its_queue_wait_for_room() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let batcher = bullmq_wire::AddBatcher::new(queue.clone());
    // the batcher's script calls block until the pause ends
    let _: () = raw(
        &ctx,
        redis::cmd("CLIENT").arg("PAUSE").arg(1000).arg("WRITE"),
    )
    .await;
    let adds = 5000;
    let tasks: Vec<_> = (0..adds)
        .map(|i| {
            let b = batcher.clone();
            tokio::spawn(async move { b.add("n", &json!({ "i": i }), JobOptions::default()).await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().expect("an add beyond the queue depth"));
    }
    assert_eq!(ids.len(), adds);
    assert_eq!(
        queue.get_job_counts(&[JobState::Waiting]).await.unwrap()[&JobState::Waiting],
        adds as u64
    );
}

/// With Redis down every add waiting in the batcher gets a retryable
/// error, and the batcher works again once Redis is back.
#[tokio::test]
async fn batcher_reports_redis_outages_and_recovers() {
    let mut ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let batcher = bullmq_wire::AddBatcher::new(queue.clone());
    assert_eq!(
        batcher
            .add("n", &json!({}), JobOptions::default())
            .await
            .unwrap(),
        "1"
    );
    ctx.server.kill();
    let adds: Vec<_> = (0..5)
        .map(|i| {
            let b = batcher.clone();
            tokio::spawn(async move { b.add("n", &json!({ "i": i }), JobOptions::default()).await })
        })
        .collect();
    for add in adds {
        let err = add.await.unwrap().expect_err("redis is down");
        assert!(
            err.is_retryable(),
            "a refused add says it may be retried: {err}"
        );
    }
    ctx.server.restart();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let id = loop {
        match batcher
            .add("n", &json!({"after": true}), JobOptions::default())
            .await
        {
            Ok(id) => break id,
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(e) => panic!("batcher did not recover: {e}"),
        }
    };
    let job = queue
        .get_job(&id)
        .await
        .unwrap()
        .expect("the job added after the restart exists");
    assert_eq!(job.data, json!({"after": true}));
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Email {
    to: String,
    retries: u8,
}

#[tokio::test]
async fn typed_data_round_trips_and_a_misfit_is_unrecoverable() {
    let ctx = ctx().await;
    let queue = Queue::new(&queue_name(), &ctx.conn).await.unwrap();
    let sent = Email {
        to: "a@example.com".into(),
        retries: 2,
    };
    let id = queue
        .add("send", &sent, JobOptions::default())
        .await
        .unwrap();
    let job = queue.get_job(&id).await.unwrap().unwrap();
    // stored as the same JSON a Value would give
    assert_eq!(job.data, json!({"to": "a@example.com", "retries": 2}));
    assert_eq!(job.data_as::<Email>().unwrap(), sent);

    let misfit = job.data_as::<Vec<String>>().unwrap_err();
    assert_eq!(misfit.job_id, id);
    let failure = bullmq_wire::JobError::from(misfit);
    assert!(failure.unrecoverable, "{failure:?}");
    assert!(failure.message.contains("does not fit"), "{failure:?}");
}

/// One batch of FIFO and LIFO jobs (pushed to `wait` together, after the
/// batch's other writes) leaves `wait` in the order adding them one by one
/// leaves it, so workers of every language take them in the same order.
#[tokio::test]
async fn a_batch_of_fifo_and_lifo_jobs_leaves_wait_as_single_adds_do() {
    let ctx = ctx().await;
    let tags = [
        "plain-1", "lifo-1", "plain-2", "plain-3", "lifo-2", "plain-4",
    ];
    let opts = |tag: &str| JobOptions {
        lifo: tag.starts_with("lifo"),
        job_id: Some(tag.to_string()),
        ..Default::default()
    };
    let ctx = &ctx;
    let wait = |q: String| async move {
        let ids: Vec<String> = raw(
            ctx,
            redis::cmd("LRANGE")
                .arg(format!("bull:{q}:wait"))
                .arg(0)
                .arg(-1),
        )
        .await;
        ids
    };

    let one_by_one = queue_name();
    let queue = Queue::new(&one_by_one, &ctx.conn).await.unwrap();
    for tag in tags {
        queue.add("j", &json!({}), opts(tag)).await.unwrap();
    }
    let batched = queue_name();
    let queue = Queue::new(&batched, &ctx.conn).await.unwrap();
    let jobs = tags
        .iter()
        .map(|t| NewJob::new("j", &json!({}), opts(t)))
        .collect();
    queue.add_bulk(jobs).await.unwrap();

    let expected = wait(one_by_one).await;
    // head to tail; workers take from the tail: the LIFO jobs first
    assert_eq!(
        expected,
        ["plain-4", "plain-3", "plain-2", "plain-1", "lifo-1", "lifo-2"]
    );
    assert_eq!(wait(batched).await, expected);
}

/// The batcher checks what it cannot vouch for: a job made by hand with
/// data that is not JSON, or options out of range, is refused before it
/// is queued; serialized data (JSON text kept as written included) lands
/// as it was written.
#[tokio::test]
async fn batcher_refuses_bad_data_and_options_and_keeps_json_text() {
    let ctx = ctx().await;
    let q = queue_name();
    let queue = Queue::new(&q, &ctx.conn).await.unwrap();
    let batcher = bullmq_wire::AddBatcher::new(queue.clone());
    let by_hand = |data: &str, opts: JobOptions| bullmq_wire::NewJob {
        name: "n".into(),
        data: data.into(),
        opts,
    };
    let err = batcher
        .add_job(by_hand("{not json", JobOptions::default()))
        .await
        .expect_err("data that is not JSON");
    assert!(err.to_string().contains("not JSON"), "{err}");
    let bad_id = JobOptions {
        job_id: Some("12".into()),
        ..JobOptions::default()
    };
    batcher
        .add("n", &json!({}), bad_id)
        .await
        .expect_err("a numeric custom id is refused, as BullMQ does");
    let text = bullmq_wire::JsonText::parse_or_string(r#"{"b":1, "a":[2]}"#);
    let id = batcher
        .add("n", &text, JobOptions::default())
        .await
        .unwrap();
    let stored: String = raw(
        &ctx,
        redis::cmd("HGET").arg(format!("bull:{q}:{id}")).arg("data"),
    )
    .await;
    assert_eq!(stored, r#"{"b":1, "a":[2]}"#);
    assert_eq!(
        queue.get_job_counts(&[JobState::Waiting]).await.unwrap()[&JobState::Waiting],
        1
    );
}
