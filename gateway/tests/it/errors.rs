//! Every bad input gets its documented error, and the connection stays
//! usable unless the documented close code says otherwise.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{demo_worker, token, Client, Env, Gw, Stack, WAIT};

/// Not JSON: -32700 with id null.
#[tokio::test]
async fn non_json_is_a_parse_error() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    c.send_text("{not json".into()).await;
    let r = c.recv().await;
    assert_eq!(r["id"], json!(null));
    assert_eq!(r["error"]["code"], -32700);
    assert_eq!(
        c.call(2, "demo.echo", json!({})).await["result"],
        json!({}),
        "still usable"
    );
}

/// A wrong `jsonrpc` or a missing or non-string method: -32600, keeping the id.
#[tokio::test]
async fn invalid_requests() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "1.0", "id": 1, "method": "demo.echo"}))
        .await;
    let r = c.recv().await;
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (json!(1), json!(-32600))
    );
    c.send(json!({"jsonrpc": "2.0", "id": 2})).await;
    let r = c.recv().await;
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (json!(2), json!(-32600))
    );
    c.send(json!({"jsonrpc": "2.0", "id": 3, "method": 42}))
        .await;
    let r = c.recv().await;
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (json!(3), json!(-32600))
    );
    c.send_text("[]".into()).await;
    assert_eq!(c.recv().await["error"]["code"], -32600);
}

/// Unknown services, unknown built-ins and names without a method: -32601.
#[tokio::test]
async fn unknown_methods() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    for (i, m) in ["other.echo", "rpc.nope", "demo", "demo."]
        .iter()
        .enumerate()
    {
        let r = c.call(i as i64, m, json!({})).await;
        assert_eq!(r["error"]["code"], -32601, "{m}: {r}");
    }
}

/// A frame over the limit gets -32002 and the socket stays open; one over
/// twice the limit closes it with 1009.
#[tokio::test]
async fn oversized_frames() {
    let s = Stack::start_with(|c| c.limits.max_message_bytes = 1024).await;
    let mut c = s.gw.client("alice").await;
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo", "params": {"pad": "x".repeat(1500)}});
    c.send(big).await;
    let r = c.recv().await;
    assert_eq!(r["error"]["code"], -32002, "{r}");
    assert_eq!(r["error"]["data"]["maxBytes"], 1024);
    assert_eq!(
        c.call(2, "demo.echo", json!({"ok": 1})).await["result"],
        json!({"ok": 1})
    );
    c.send(json!({"pad": "y".repeat(5000)})).await;
    assert_eq!(c.closed().await, 1009);
}

/// Binary frames are refused with -32600; the socket stays open.
#[tokio::test]
async fn binary_frames_are_refused() {
    use futures::SinkExt;
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    c.ws.send(tokio_tungstenite::tungstenite::Message::binary(vec![
        1u8, 2, 3,
    ]))
    .await
    .unwrap();
    let r = c.recv().await;
    assert_eq!(r["error"]["code"], -32600);
    assert!(r["error"]["message"].as_str().unwrap().contains("binary"));
    assert_eq!(c.call(2, "demo.echo", json!({})).await["result"], json!({}));
}

/// A text frame that is not UTF-8 closes the socket with 1007, as RFC 6455
/// asks (it was 1005, no status).
#[tokio::test]
async fn invalid_utf8_text_closes_with_1007() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::protocol::frame::{coding::Data, coding::OpCode, Frame};
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    assert_eq!(c.call(1, "demo.echo", json!({})).await["result"], json!({}));
    let frame = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    c.ws.send(tokio_tungstenite::tungstenite::Message::Frame(frame))
        .await
        .unwrap();
    assert_eq!(c.closed().await, 1007);
}

/// A flood past the per-user bucket gets -32001 with a retry hint.
#[tokio::test]
async fn floods_are_rate_limited() {
    let s = Stack::start_with(|c| {
        c.limits.user_rate = gateway::config::Rate {
            per_second: 2.0,
            burst: 5.0,
        };
        c.limits.rate_limit_close_after = 0;
    })
    .await;
    let mut c = s.gw.client("alice").await;
    for i in 0..20 {
        c.send(
            json!({"jsonrpc": "2.0", "id": i, "method": "rpc.status", "params": {"jobId": "x"}}),
        )
        .await;
    }
    let mut limited = 0;
    for _ in 0..20 {
        let r = c.recv().await;
        if r["error"]["code"] == -32001 {
            assert!(r["error"]["data"]["retryAfterMs"].as_u64().unwrap() > 0);
            limited += 1;
        }
    }
    assert!(limited >= 10, "most of the flood is refused: {limited}");
}

/// Behind a trusted proxy each forwarded client has its own per-IP bucket;
/// without that trust the header is ignored and everyone shares the
/// proxy's.
#[tokio::test]
async fn per_ip_limits_follow_x_forwarded_for_only_from_trusted_proxies() {
    async fn limited_calls(trusted: &str) -> Vec<usize> {
        let trusted = gateway::config::TrustedProxies::parse(trusted).unwrap();
        let s = Stack::start_with(move |c| {
            c.limits.user_rate.per_second = 0.0;
            c.limits.ip_rate = gateway::config::Rate {
                per_second: 0.001,
                burst: 3.0,
            };
            c.limits.rate_limit_close_after = 0;
            c.limits.trusted_proxies = trusted;
        })
        .await;
        let mut counts = Vec::new();
        for (user, client_ip) in [("alice", "198.51.100.1"), ("bob", "198.51.100.2")] {
            let url = s.gw.url(&token(user, 600));
            let mut c = Client::connect_with(&url, &[("x-forwarded-for", client_ip)])
                .await
                .expect("connects");
            let mut limited = 0;
            for i in 0..3 {
                let r = c.call(i, "rpc.status", json!({"jobId": "x"})).await;
                if r["error"]["code"] == -32001 {
                    limited += 1;
                }
            }
            counts.push(limited);
        }
        counts
    }
    // the test's connections come from 127.0.0.1
    assert_eq!(
        limited_calls("127.0.0.1").await,
        [0, 0],
        "each forwarded client has its own bucket"
    );
    assert_eq!(
        limited_calls("10.0.0.0/8").await,
        [0, 3],
        "an untrusted peer's header is ignored"
    );
}

/// A client that keeps sending while limited is cut off with 4429.
#[tokio::test]
async fn persistent_floods_close_the_socket() {
    let s = Stack::start_with(|c| {
        c.limits.user_rate = gateway::config::Rate {
            per_second: 1.0,
            burst: 1.0,
        };
        c.limits.rate_limit_close_after = 5;
    })
    .await;
    let mut c = s.gw.client("alice").await;
    for i in 0..10 {
        c.send(json!({"jsonrpc": "2.0", "id": i, "method": "demo.echo"}))
            .await;
    }
    assert_eq!(c.closed().await, 4429);
}

/// Past `max_in_flight` waiting calls, more get -32005.
#[tokio::test]
async fn too_many_jobs_in_flight() {
    let s = Stack::without_worker(|c| c.limits.max_in_flight = 2).await;
    let mut c = s.gw.client("alice").await;
    for i in 1..=3 {
        c.send(json!({"jsonrpc": "2.0", "id": i, "method": "demo.echo", "ack": true}))
            .await;
    }
    let (r, _) = tokio::time::timeout(WAIT, c.response(json!(3)))
        .await
        .unwrap();
    assert_eq!(r["error"]["code"], -32005, "{r}");
    assert_eq!(r["error"]["data"]["limit"], 2);
}

/// With Redis down a call is refused with -32004 and `retryable: true`
/// (nothing was enqueued); once Redis is back, retries are accepted and
/// answered (keyspace notifications are switched on again after the
/// restart, which does not keep CONFIG SET).
#[tokio::test]
async fn redis_unavailable_is_retryable() {
    // no outage wait: the call is refused at the notifier's first failed
    // reconnect (`a_watch_waits_for_redis_to_come_back` has the wait)
    let mut s = Stack::start_with(|c| c.limits.watch_outage_wait = std::time::Duration::ZERO).await;
    let mut c = s.gw.client("alice").await;
    assert_eq!(c.call(1, "demo.echo", json!({})).await["result"], json!({}));
    s.env.redis.kill();
    let r = c.call(2, "demo.echo", json!({})).await;
    assert_eq!(r["error"]["code"], -32004, "{r}");
    assert_eq!(r["error"]["data"]["retryable"], true);
    s.env.redis.restart();
    // The client's side of the contract: retry with backoff until accepted.
    c.echo_until_answered(10).await;
}

/// Issue 11: a watch made while Redis is down (here `rpc.subscribe` to a
/// job acknowledged before the outage, and a new call) waits while the
/// notifier reconnects with backoff, up to `watch_outage_wait`, and gets
/// its result once Redis is back; the socket that was already watching
/// gets its result too. Before, the subscribe and the call were answered
/// -32004 at the first failed reconnect attempt.
#[tokio::test]
async fn a_watch_waits_for_redis_to_come_back() {
    let env = Env {
        redis: bullmq_wire::testing::RedisServer::start_durable(),
    };
    let mut config = env.config();
    config.limits.watch_outage_wait = std::time::Duration::from_secs(60);
    let gw = Gw::start(config).await;
    let mut env = env;
    let mut owner = gw.client("alice").await;
    owner
        .send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo",
            "params": {"n": 1}, "jobId": "outage-1", "ack": true}))
        .await;
    let (accepted, _) = owner.recv_until(|m| m["method"] == "rpc.accepted").await;
    let job_id = accepted["params"]["jobId"]
        .as_str()
        .expect("a job id")
        .to_string();
    let mut reattach = gw.client("alice").await;
    let mut caller = gw.client("alice").await;

    env.redis.kill();
    // the notifier sees its connection drop and fails to reconnect
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = gw.http_get("/healthz").await;
        if body.contains("\"connecting\"") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    reattach
        .send(json!({"jsonrpc": "2.0", "id": 2, "method": "rpc.subscribe",
            "params": {"jobId": job_id}}))
        .await;
    caller
        .send(json!({"jsonrpc": "2.0", "id": 3, "method": "demo.echo", "params": {"n": 3}}))
        .await;
    // several reconnect attempts fail meanwhile (backoff 100 ms .. 1 s);
    // before, both had their -32004 by now
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    env.redis.restart();
    let worker = demo_worker(&env.connection().await).await;

    let (r, _) = owner.response(json!(1)).await;
    assert_eq!(r["result"], json!({"n": 1}), "{r}");
    let (r, _) = reattach.response(json!(2)).await;
    assert_eq!(r["result"], json!({"n": 1}), "{r}");
    let (r, _) = caller.response(json!(3)).await;
    assert_eq!(r["result"], json!({"n": 3}), "{r}");
    worker.close().await;
}

/// The wait is bounded: with Redis gone for good, a call is answered
/// -32004 (retryable) once `watch_outage_wait` has passed, not before.
#[tokio::test]
async fn a_watch_gives_up_after_the_outage_wait() {
    let wait = std::time::Duration::from_secs(2);
    let mut s = Stack::start_with(|c| c.limits.watch_outage_wait = wait).await;
    let mut c = s.gw.client("alice").await;
    assert_eq!(c.call(1, "demo.echo", json!({})).await["result"], json!({}));
    s.env.redis.kill();
    let asked = std::time::Instant::now();
    let r = c.call(2, "demo.echo", json!({})).await;
    assert_eq!(r["error"]["code"], -32004, "{r}");
    assert_eq!(r["error"]["data"]["retryable"], true, "{r}");
    assert!(
        asked.elapsed() >= wait,
        "answered after {:?}",
        asked.elapsed()
    );
}

/// Frames that carry no request (not JSON, binary, too large) cost a
/// token like calls: one user flooding them on two sockets gets at most
/// the burst answered, then -32001 (once per streak), then 4400 after
/// `max_invalid_frames` within the window; another user's calls are still answered.
/// Before, every such frame was answered and none was limited.
#[tokio::test]
async fn garbage_floods_are_limited_then_closed() {
    let s = Stack::start_with(|c| {
        c.limits.max_message_bytes = 1024;
        c.limits.user_rate = gateway::config::Rate {
            per_second: 1.0,
            burst: 10.0,
        };
        c.limits.ip_rate.per_second = 0.0;
        c.limits.rate_limit_close_after = 0;
        c.limits.max_invalid_frames = 30;
    })
    .await;
    let mut victim = s.gw.client("bob").await;
    let mut sockets = vec![s.gw.client("mallory").await, s.gw.client("mallory").await];
    for c in &mut sockets {
        for i in 0..30 {
            let frame = match i % 3 {
                0 => Message::text(format!("{{\"jsonrpc\": \"2.0\", {}", "x".repeat(900))),
                1 => Message::binary(vec![0u8; 64]),
                _ => Message::text("y".repeat(1500)),
            };
            c.ws.send(frame).await.expect("send");
        }
    }
    let mut answered = 0;
    let mut limited = 0;
    for c in &mut sockets {
        let close = loop {
            let msg = tokio::time::timeout(WAIT, c.ws.next())
                .await
                .expect("a frame in time");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    match v["error"]["code"].as_i64() {
                        Some(-32001) => limited += 1,
                        Some(-32700 | -32600 | -32002) => answered += 1,
                        _ => panic!("unexpected {v}"),
                    }
                }
                Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                other => panic!("expected a close, got {other:?}"),
            }
        };
        assert_eq!(close, Some(4400));
    }
    assert!(answered <= 11, "burst 10 (+1 refilled): {answered}");
    assert!(
        (1..=2).contains(&limited),
        "one -32001 per streak: {limited}"
    );
    assert_eq!(
        victim
            .call(1, "demo.echo", json!({"still": "served"}))
            .await["result"],
        json!({"still": "served"})
    );
}

/// Issue 11, defect 6: garbage is counted within a window, not in a row,
/// so a socket that mixes a valid call between its invalid frames is still
/// closed once `max_invalid_frames` fall within `invalid_frames_window`.
#[tokio::test]
async fn garbage_mixed_with_valid_calls_is_still_closed() {
    let s = Stack::start_with(|c| {
        c.limits.max_invalid_frames = 10;
        c.limits.invalid_frames_window = std::time::Duration::from_secs(60);
    })
    .await;
    let mut c = s.gw.client("mallory").await;
    for i in 0..9 {
        c.send_text("{not json".into()).await;
        assert_eq!(c.recv().await["error"]["code"], -32700);
        // Before, a valid call reset the count of invalid frames in a row.
        assert_eq!(
            c.call(i, "demo.echo", json!({"i": i})).await["result"],
            json!({"i": i})
        );
    }
    c.send_text("{not json".into()).await;
    assert_eq!(c.closed().await, 4400);
}

/// Invalid frames spread wider than the window never add up to a close.
#[tokio::test]
async fn invalid_frames_spread_over_windows_do_not_close() {
    let s = Stack::start_with(|c| {
        c.limits.max_invalid_frames = 3;
        c.limits.invalid_frames_window = std::time::Duration::from_secs(1);
    })
    .await;
    let mut c = s.gw.client("alice").await;
    for round in 0..3 {
        for _ in 0..2 {
            c.send_text("{not json".into()).await;
            assert_eq!(c.recv().await["error"]["code"], -32700);
        }
        // Let the window end: the next two start a new one.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert_eq!(
            c.call(round, "demo.echo", json!({})).await["result"],
            json!({}),
            "still open after round {round}"
        );
    }
}

/// Issue 11, defect 2: after Redis restarts, the first call and the first
/// `/healthz` succeed (no -32004, no 503 once Redis is back).
#[tokio::test]
async fn the_first_call_after_a_redis_restart_succeeds() {
    let mut s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    assert_eq!(c.call(1, "demo.echo", json!({})).await["result"], json!({}));
    s.env.redis.restart();
    let (status, body) = s.gw.http_get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    let r = c.call(2, "demo.echo", json!({"n": 2})).await;
    assert_eq!(r["result"], json!({"n": 2}), "{r}");
}

/// A socket closed for garbage (4400) puts its user in a cool-down: new
/// connections get 429 with Retry-After until it ends, so reconnecting does
/// not restart the flood at once; other users are not affected.
#[tokio::test]
async fn a_user_closed_for_garbage_cools_down_before_reconnecting() {
    let s = Stack::start_with(|c| {
        c.limits.max_invalid_frames = 3;
        c.limits.abuse_cooldown = std::time::Duration::from_secs(2);
    })
    .await;
    let mut c = s.gw.client("mallory").await;
    for _ in 0..3 {
        c.send_text("{not json".into()).await;
    }
    assert_eq!(c.closed().await, 4400);
    let started = tokio::time::Instant::now();
    let refused = Client::connect(&s.gw.url(&token("mallory", 600)))
        .await
        .err()
        .expect("refused while cooling down");
    assert_eq!(refused.status, 429);
    assert!(
        refused.body.contains("closed for abuse"),
        "{}",
        refused.body
    );
    let mut other = s.gw.client("alice").await;
    assert_eq!(
        other.call(1, "demo.echo", json!({"ok": 1})).await["result"],
        json!({"ok": 1})
    );
    // Once the cool-down is over the user connects again.
    let mut back = loop {
        match Client::connect(&s.gw.url(&token("mallory", 600))).await {
            Ok(c) => break c,
            Err(r) => assert_eq!(r.status, 429),
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the cool-down never ended"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
    assert_eq!(
        back.call(2, "demo.echo", json!({})).await["result"],
        json!({})
    );
}
