//! Heartbeats, shutdown, slow consumers and connection limits.

use futures::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::support::raw::RawClient;
use crate::support::{token, Client, Gw, Stack, WAIT};

/// A client that answers no ping is closed with 4000 after the idle timeout.
#[tokio::test]
async fn silent_clients_are_closed_with_4000() {
    let s = Stack::without_worker(|c| {
        c.limits.ping_interval = std::time::Duration::from_millis(100);
        c.limits.idle_timeout = std::time::Duration::from_millis(400);
    })
    .await;
    let mut raw = RawClient::connect(s.gw.addr, &token("alice", 600)).await;
    let (code, pings) = raw.close_code().await;
    assert_eq!(code, 4000);
    assert!(pings >= 2, "the server pinged before giving up: {pings}");
}

/// A client that answers pings stays; the server answers client pings.
#[tokio::test]
async fn pings_both_ways() {
    let s = Stack::start_with(|c| {
        c.limits.ping_interval = std::time::Duration::from_millis(100);
        c.limits.idle_timeout = std::time::Duration::from_millis(400);
    })
    .await;
    let mut c = s.gw.client("alice").await;
    // Reading answers the server's pings; the job outlives several idle timeouts.
    let r = c
        .call(1, "demo.sleep", json!({"ms": 1500, "steps": 1}))
        .await;
    assert_eq!(r["result"], json!({"slept": 1500}));
    c.ws.send(Message::Ping(b"hi".to_vec().into()))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(WAIT, futures::StreamExt::next(&mut c.ws))
            .await
            .unwrap()
        {
            Some(Ok(Message::Pong(p))) if p.as_ref() == b"hi" => break,
            Some(Ok(_)) => continue,
            other => panic!("expected our pong, got {other:?}"),
        }
    }
}

/// Shutdown closes sockets with 1012 (reconnect), stops accepting, and
/// leaves jobs running: a second gateway delivers the result.
#[tokio::test]
async fn shutdown_closes_with_1012_and_jobs_keep_running() {
    let s = Stack::start().await;
    let Stack { env, gw, worker } = s;
    let mut c = gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.sleep", "params": {"ms": 1500, "steps": 3}, "ack": true}))
        .await;
    let job_id = c.recv().await["params"]["jobId"].clone();
    let addr = gw.addr;
    let stopping = tokio::spawn(gw.shutdown());
    assert_eq!(c.closed().await, 1012);
    tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
    let gw2 = Gw::start(env.config()).await;
    let mut c2 = gw2.client("alice").await;
    let r = c2.call(2, "rpc.subscribe", json!({"jobId": job_id})).await;
    assert_eq!(r["result"], json!({"slept": 1500}), "{r}");
    drop(worker);
}

/// A client that stops reading is cut off (4001) instead of being
/// buffered for without bound.
#[tokio::test]
async fn slow_consumers_are_cut_off() {
    let s = Stack::start_with(|c| {
        c.limits.send_queue = 4;
        c.limits.user_rate.per_second = 0.0;
        c.limits.ip_rate.per_second = 0.0;
        c.limits.max_in_flight = 10_000;
    })
    .await;
    let mut c = s.gw.client("alice").await;
    let pad = "x".repeat(60_000);
    let n = 600;
    for i in 0..n {
        let frame =
            json!({"jsonrpc": "2.0", "id": i, "method": "demo.echo", "params": {"pad": pad}});
        if c.ws.send(Message::text(frame.to_string())).await.is_err() {
            break; // already cut off
        }
    }
    // Only now read: the socket must end before all answers arrive.
    let mut answers = 0;
    loop {
        match tokio::time::timeout(WAIT, futures::StreamExt::next(&mut c.ws))
            .await
            .expect("the socket ends in time")
        {
            Some(Ok(Message::Text(_))) => answers += 1,
            Some(Ok(Message::Close(frame))) => {
                if let Some(f) = frame {
                    assert_eq!(u16::from(f.code), 4001);
                }
                break;
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => break,
        }
    }
    assert!(answers < n, "cut off after {answers} answers");
}

/// Past `max_connections`, upgrades get 503.
#[tokio::test]
async fn connection_limit() {
    let s = Stack::without_worker(|c| c.limits.max_connections = 1).await;
    let _first = s.gw.client("alice").await;
    let second = Client::connect(&s.gw.url(&token("bob", 600))).await;
    assert_eq!(second.err().map(|r| r.status), Some(503));
}

/// `gateway::run(config, shutdown)` serves until the shutdown future
/// resolves, then closes sockets with 1012 and returns.
#[tokio::test]
async fn run_returns_after_the_shutdown_future() {
    let env = crate::support::Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = env.config();
    config.listen = ([127, 0, 0, 1], port).into();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(gateway::run(config, async {
        let _ = stopped.await;
    }));
    let url = format!("ws://127.0.0.1:{port}/ws?token={}", token("alice", 600));
    // Wait for the listener: connection refused until `run` has bound.
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "run() never listened"
        );
        tokio::task::yield_now().await;
    }
    let mut c = Client::connect(&url).await.unwrap();
    let r = c.call(1, "rpc.status", json!({"jobId": "x"})).await;
    assert_eq!(r["error"]["code"], -32003);
    stop.send(()).unwrap();
    assert_eq!(c.closed().await, 1012);
    tokio::time::timeout(WAIT, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
