//! What the notifier reads: a call's job is read once when it ends soon
//! after it starts, not at all when its worker publishes the result, and
//! an end that is the job's second write still arrives; `notify =
//! published` with publishing workers.

use serde_json::json;

use bullmq_wire::{Worker, WorkerOptions};
use gateway::config::NotifyMode;

use crate::support::{demo_worker_with, Stack};

/// The demo worker publishing its results (`publish_results`, as the
/// `worker` binary and `--dev` do).
async fn publishing_worker(s: &Stack, concurrency: usize) -> Worker {
    let opts = WorkerOptions {
        concurrency,
        publish_results: true,
        ..Default::default()
    };
    demo_worker_with(&s.env.connection().await, opts).await
}

/// Drops every pub/sub connection (the gateway's hub connects again).
async fn kill_pubsub(redis: &mut bullmq_wire::CommandConnection) {
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(redis)
        .await
        .unwrap();
}

/// The gateway's reply channel (published mode), once its hub subscribed it.
async fn reply_channel(redis: &mut bullmq_wire::CommandConnection) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let channels: Vec<String> = redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .arg("bullmq-wire:gateway:*")
            .query_async(redis)
            .await
            .unwrap();
        match channels.as_slice() {
            [channel] => return channel.clone(),
            [] if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            _ => panic!("one reply channel: {channels:?}"),
        }
    }
}

/// `gateway_notifier_reads_total` from `/metrics`.
async fn reads(s: &Stack) -> u64 {
    let (_, text) = s.gw.http_get("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix("gateway_notifier_reads_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no reads counter in:\n{text}"))
}

/// Makes `calls` quick calls one after the other; returns the reads
/// they cost the notifier.
async fn reads_for_quick_calls(s: &Stack, calls: i64) -> u64 {
    let mut c = s.gw.client("alice").await;
    let before = reads(s).await;
    for i in 0..calls {
        let r = c.call(i, "demo.echo", json!({"i": i})).await;
        assert_eq!(r["result"], json!({"i": i}), "{r}");
    }
    reads(s).await - before
}

/// The move to active is not read when the end follows within the
/// activation delay: 20 quick calls cost about 20 reads, not 40 (one for
/// the activation and one for the end each, as before).
#[tokio::test]
async fn a_quick_call_is_read_once() {
    let s = Stack::start().await;
    let calls = 20;
    let spent = reads_for_quick_calls(&s, calls).await;
    // a call whose end comes later than the delay (a loaded machine) is
    // read twice: allow a few, but not one read per write
    assert!(
        (calls as u64..=calls as u64 + 5).contains(&spent),
        "{spent} reads for {calls} calls"
    );
}

/// A worker that publishes its results (`publish_results`, on in the
/// `worker` binary and `--dev`): quick calls are answered without a read.
#[tokio::test]
async fn a_published_result_is_not_read() {
    let s = Stack::without_worker(|_| {}).await;
    let _worker = publishing_worker(&s, 4).await;
    let calls = 20;
    let spent = reads_for_quick_calls(&s, calls).await;
    // only a call whose end comes later than the activation delay is read
    assert!(spent <= 5, "{spent} reads for {calls} calls");
}

/// A worker that wrote nothing when it took the job (so its end is the
/// job's second write, which the notifier defers): the end still reaches
/// the client.
#[tokio::test]
async fn an_end_that_is_the_second_write_is_delivered() {
    let s = Stack::without_worker(|_| {}).await;
    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo", "ack": true}))
        .await;
    let accepted = c.recv().await;
    assert_eq!(accepted["method"], "rpc.accepted", "{accepted}");
    let job_id = accepted["params"]["jobId"].as_str().unwrap().to_string();
    let conn = s.env.connection().await;
    let mut redis = conn.command_connection();
    let _: () = redis::cmd("HSET")
        .arg(format!("bull:demo:{job_id}"))
        .arg("returnvalue")
        .arg(r#"{"by":"hand"}"#)
        .arg("finishedOn")
        .arg(crate::support::now() * 1000)
        .query_async(&mut redis)
        .await
        .unwrap();
    let (r, _) = c.response(json!(1)).await;
    assert_eq!(r["result"], json!({"by": "hand"}), "{r}");
}

/// `notify = published` with workers that publish: results, progress
/// and failures arrive as in keyspace mode, with no read and no keyspace
/// notifications.
#[tokio::test]
async fn published_mode_delivers_results_progress_and_failures() {
    let s = Stack::without_worker(|c| c.notify = NotifyMode::Published).await;
    let _worker = publishing_worker(&s, 4).await;
    let mut c = s.gw.client("alice").await;
    let before = reads(&s).await;

    let r = c.call(1, "demo.echo", json!({"a": 1})).await;
    assert_eq!(r["result"], json!({"a": 1}), "{r}");

    c.send(json!({"jsonrpc": "2.0", "id": 2, "method": "demo.sleep", "params": {"ms": 300, "steps": 3}}))
        .await;
    let (r, before_end) = c.response(json!(2)).await;
    assert_eq!(r["result"], json!({"slept": 300}), "{r}");
    let progress: Vec<_> = before_end
        .iter()
        .filter(|n| n["method"] == "rpc.progress")
        .map(|n| n["params"]["progress"].clone())
        .collect();
    assert_eq!(
        progress.last(),
        Some(&json!({"step": 3, "of": 3})),
        "{before_end:?}"
    );

    let r = c.call(3, "demo.fail", json!({"message": "no way"})).await;
    assert_eq!(r["error"]["code"], -32010, "{r}");
    assert_eq!(r["error"]["data"]["failedReason"], "no way", "{r}");
    assert_eq!(r["error"]["data"]["attemptsMade"], 1, "{r}");

    assert_eq!(reads(&s).await, before, "published mode reads no job");
    let (_, health) = s.gw.http_get("/healthz").await;
    assert!(health.contains(r#""mode":"published""#), "{health}");
    let mut flags = s.env.connection().await.command_connection();
    let (_, keyspace): (String, String) = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(&mut flags)
        .await
        .unwrap();
    assert_eq!(keyspace, "", "no keyspace notifications were enabled");
}

/// Published mode: a fresh call needs no subscription of its own (the
/// gateway's reply channel is subscribed once), and a client that
/// re-attaches on another gateway gets the end through `job:{jobId}`.
#[tokio::test]
async fn published_mode_subscribes_once_and_reattaches_elsewhere() {
    let s = Stack::without_worker(|c| c.notify = NotifyMode::Published).await;
    let mut other_config = s.env.config();
    other_config.notify = NotifyMode::Published;
    let other = crate::support::Gw::start(other_config).await;
    let subscribes = |text: String| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("cmdstat_subscribe:calls="))
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let redis = s.env.connection().await.command_connection();
    let stats = |mut redis: bullmq_wire::CommandConnection| async move {
        let text: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut redis)
            .await
            .unwrap();
        text
    };

    // the job waits (no worker yet) while its client moves to the other gateway
    let mut c = s.gw.client("alice").await;
    c.send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo", "params": {"k": 1}, "ack": true}),
    )
    .await;
    let job_id = c.recv().await["params"]["jobId"].clone();
    let mut moved = other.client("alice").await;
    let r_sub = json!({"jsonrpc": "2.0", "id": 9, "method": "rpc.subscribe", "params": {"jobId": job_id}, "ack": true});
    moved.send(r_sub).await;
    assert_eq!(moved.recv().await["method"], "rpc.accepted");

    let before = subscribes(stats(redis.clone()).await);
    let _worker = publishing_worker(&s, 4).await;
    assert_eq!(c.response(json!(1)).await.0["result"], json!({"k": 1}));
    assert_eq!(moved.response(json!(9)).await.0["result"], json!({"k": 1}));
    for i in 0..10 {
        let r = c.call(10 + i, "demo.echo", json!({"i": i})).await;
        assert_eq!(r["result"], json!({"i": i}), "{r}");
    }
    assert_eq!(
        subscribes(stats(redis.clone()).await),
        before,
        "fresh calls subscribe to nothing"
    );
    other.shutdown().await;
}

/// Published mode: a worker that settles several of this gateway's jobs in
/// one script call publishes their ends as one message on the reply
/// channel, a JSON array; each call gets its own end from it.
#[tokio::test]
async fn published_mode_delivers_the_ends_of_one_reply_message() {
    let s = Stack::without_worker(|c| c.notify = NotifyMode::Published).await;
    let mut redis = s.env.connection().await.command_connection();
    // the hub subscribes its reply channel once connected
    let reply_channel = reply_channel(&mut redis).await;

    // no worker: the jobs wait while the array naming both is published
    let mut c = s.gw.client("alice").await;
    let mut ids = Vec::new();
    for id in [1, 2] {
        c.send(json!({"jsonrpc": "2.0", "id": id, "method": "demo.echo", "params": {"id": id}, "ack": true}))
            .await;
        let accepted = c.recv().await;
        assert_eq!(accepted["method"], "rpc.accepted", "{accepted}");
        ids.push(accepted["params"]["jobId"].clone());
    }
    let ends = json!([
        {"type": "result", "jobId": ids[0], "result": {"by": "array"}},
        {"type": "error", "jobId": ids[1], "error": "no way", "attemptsMade": 1},
        {"type": "result", "jobId": "demo.someone-else.1", "result": 1},
    ]);
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&reply_channel)
        .arg(ends.to_string())
        .query_async(&mut redis)
        .await
        .unwrap();
    let (r, _) = c.response(json!(1)).await;
    assert_eq!(r["result"], json!({"by": "array"}), "{r}");
    let (r, _) = c.response(json!(2)).await;
    assert_eq!(r["error"]["data"]["failedReason"], "no way", "{r}");
}

/// Published mode: a fresh call is added without waiting for the hub (its
/// updates come on the reply channel, already subscribed). When the
/// pub/sub connection drops while calls run, ends published meanwhile
/// are not lost: the jobs are read again once it is back.
#[tokio::test]
async fn published_mode_calls_survive_pubsub_drops() {
    const CALLS: i64 = 60;
    let s = Stack::without_worker(|c| c.notify = NotifyMode::Published).await;
    let _worker = publishing_worker(&s, 8).await;
    let mut c = s.gw.client("alice").await;
    let mut redis = s.env.connection().await.command_connection();
    let killer = tokio::spawn(async move {
        for _ in 0..4 {
            tokio::time::sleep(std::time::Duration::from_millis(40)).await;
            kill_pubsub(&mut redis).await;
        }
    });
    for id in 0..CALLS {
        c.send(json!({"jsonrpc": "2.0", "id": id, "method": "demo.sleep", "params": {"ms": 30 + id % 7}}))
            .await;
    }
    let mut answered = std::collections::BTreeMap::new();
    while answered.len() < CALLS as usize {
        let v = c.recv().await;
        if v.get("method").is_some() {
            continue;
        }
        let id = v["id"].as_i64().expect("a response id");
        assert_eq!(v["result"], json!({"slept": 30 + id % 7}), "{v}");
        assert!(answered.insert(id, v).is_none(), "call {id} answered twice");
    }
    killer.await.unwrap();
}

/// Published mode: a call's end that was never heard (here written by
/// hand, without a message, as if it had been published while the
/// gateway's pub/sub connection was away) reaches the client once that
/// connection comes back: the gateway reads its calls' jobs again then.
#[tokio::test]
async fn published_mode_reads_calls_again_after_a_reconnect() {
    let s = Stack::without_worker(|c| c.notify = NotifyMode::Published).await;
    let mut redis = s.env.connection().await.command_connection();
    // connected: a fresh call's end is then expected on the reply channel
    reply_channel(&mut redis).await;
    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo", "ack": true}))
        .await;
    let accepted = c.recv().await;
    assert_eq!(accepted["method"], "rpc.accepted", "{accepted}");
    let job_id = accepted["params"]["jobId"].as_str().unwrap().to_string();
    let (_, health) = s.gw.http_get("/healthz").await;
    assert!(health.contains(r#""watched":1"#), "{health}");
    let _: () = redis::cmd("HSET")
        .arg(format!("bull:demo:{job_id}"))
        .arg("returnvalue")
        .arg(r#"{"heard": "after the reconnect"}"#)
        .arg("finishedOn")
        .arg(crate::support::now() * 1000)
        .query_async(&mut redis)
        .await
        .unwrap();
    kill_pubsub(&mut redis).await;
    let (r, _) = c.response(json!(1)).await;
    assert_eq!(r["result"], json!({"heard": "after the reconnect"}), "{r}");
    let (_, health) = s.gw.http_get("/healthz").await;
    assert!(health.contains(r#""watched":0"#), "{health}");
}

/// Published mode: a socket that also subscribes to its own call's job
/// gets both answers from the one message on its reply channel, and
/// afterwards the gateway watches nothing (the call's route and the
/// subscription's watch both end).
#[tokio::test]
async fn published_mode_call_and_subscribe_on_one_socket_both_end() {
    let s = Stack::without_worker(|c| c.notify = NotifyMode::Published).await;
    let mut redis = s.env.connection().await.command_connection();
    let reply_channel = reply_channel(&mut redis).await;
    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo", "ack": true}))
        .await;
    let accepted = c.recv().await;
    let job_id = accepted["params"]["jobId"].clone();
    c.send(
        json!({"jsonrpc": "2.0", "id": 2, "method": "rpc.subscribe", "params": {"jobId": job_id}}),
    )
    .await;
    // the subscription is in place once the hub subscribed the job's channel
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let n: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(format!("job:{}", job_id.as_str().unwrap()))
            .query_async(&mut redis)
            .await
            .unwrap();
        if n.first().is_some_and(|(_, n)| *n > 0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no subscription");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let end = json!({"type": "result", "jobId": job_id, "result": {"both": true}});
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&reply_channel)
        .arg(end.to_string())
        .query_async(&mut redis)
        .await
        .unwrap();
    for id in [1, 2] {
        let (r, _) = c.response(json!(id)).await;
        assert_eq!(r["result"], json!({"both": true}), "{r}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, health) = s.gw.http_get("/healthz").await;
        if health.contains(r#""watched":0"#) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still watching: {health}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Published mode with Redis down: a call (whose watch is not waited for)
/// is refused with -32004 and `retryable: true`, as in the other modes, and
/// once Redis is back retries are accepted and answered.
#[tokio::test]
async fn published_mode_redis_unavailable_is_retryable() {
    let mut s = Stack::without_worker(|c| {
        c.notify = NotifyMode::Published;
        c.limits.watch_outage_wait = std::time::Duration::ZERO;
    })
    .await;
    let _worker = publishing_worker(&s, 4).await;
    let mut c = s.gw.client("alice").await;
    assert_eq!(c.call(1, "demo.echo", json!({})).await["result"], json!({}));
    s.env.redis.kill();
    let r = c.call(2, "demo.echo", json!({})).await;
    assert_eq!(r["error"]["code"], -32004, "{r}");
    assert_eq!(r["error"]["data"]["retryable"], true, "{r}");
    s.env.redis.restart();
    c.echo_until_answered(10).await;
}
