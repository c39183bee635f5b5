//! Operations: health, metrics, TLS, custom publishers on `job:{jobId}`,
//! and the events-stream fallback of the notifier.

use std::sync::Arc;
use std::time::Duration;

use gateway::config::NotifyMode;
use rustls_pki_types::{pem::PemObject, CertificateDer};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{http_get_at, token, Client, Env, Gw, Stack, WAIT};

/// `/healthz` says whether Redis answers; unknown paths are 404; `/ws`
/// without an upgrade is 426.
#[tokio::test]
async fn health_and_plain_http() {
    let s = Stack::without_worker(|_| {}).await;
    let (status, body) = s.gw.http_get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ok\""));
    assert_eq!(s.gw.http_get("/nope").await.0, 404);
    assert_eq!(s.gw.http_get("/ws").await.0, 426);
}

/// The ids of the Redis clients whose last command was `cmd`.
async fn clients_whose_last_command_was(env: &Env, cmd: &str) -> Vec<String> {
    let mut con = env.connection().await.command_connection();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut con)
        .await
        .unwrap();
    let needle = format!(" cmd={cmd} ");
    list.lines()
        .filter(|l| format!("{l} ").contains(&needle))
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_string)
        .collect()
}

/// The gateway's clients other than the pub/sub one (and the test's own).
async fn command_clients(env: &Env) -> Vec<String> {
    let mut con = env.connection().await.command_connection();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut con)
        .await
        .unwrap();
    list.lines()
        .filter(|l| {
            let l = format!("{l} ");
            ![
                "client|list",
                "NULL",
                "subscribe",
                "psubscribe",
                "unsubscribe",
            ]
            .iter()
            .any(|c| l.contains(&format!(" cmd={c} ")))
        })
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_string)
        .collect()
}

/// `/healthz` probes the connection the calls use, not one of its own:
/// the gateway opens one command connection (the notifier shares it), and
/// the next call's `addJobs` goes through it. With Redis gone it answers 503.
#[tokio::test]
async fn healthz_probes_the_connection_calls_use() {
    let mut s = Stack::without_worker(|_| {}).await;
    let (status, body) = s.gw.http_get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["redis"], "ok", "{body}");
    assert!(health["redis_latency_ms"].as_f64().is_some(), "{body}");
    assert_eq!(health["notifier"]["mode"], "keyspace", "{body}");
    assert_eq!(health["notifier"]["watched"], 0, "{body}");
    // the pub/sub connection comes up right after start
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = s.gw.http_get("/healthz").await;
        let health: Value = serde_json::from_str(&body).unwrap();
        if health["notifier"]["state"] == "subscribed" {
            break;
        }
        assert_eq!(health["notifier"]["state"], "connecting", "{body}");
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pinged = command_clients(&s.env).await;
    assert_eq!(pinged.len(), 1, "one command connection: {pinged:?}");

    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "method": "demo.echo", "params": {}}))
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // EVAL the first time (Redis does not know the script yet), then EVALSHA
        let mut evalsha = clients_whose_last_command_was(&s.env, "evalsha").await;
        evalsha.extend(clients_whose_last_command_was(&s.env, "eval").await);
        if evalsha.contains(&pinged[0]) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call never went through the client {} that answered /healthz (evalsha on {evalsha:?})",
            pinged[0]
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    s.env.redis.kill();
    let (status, body) = s.gw.http_get("/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"unreachable\""), "{body}");
}

/// `/metrics` counts connections and calls by method and outcome, with
/// latency histograms and queue depth.
#[tokio::test]
async fn metrics_in_prometheus_text() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    c.call(1, "demo.echo", json!({})).await;
    c.call(2, "demo.nope", json!({})).await;
    c.call(3, "bad.service", json!({})).await;
    let (status, text) = s.gw.http_get("/metrics").await;
    assert_eq!(status, 200);
    for needle in [
        "gateway_connections 1",
        "gateway_calls_total{method=\"demo.echo\",outcome=\"ok\"} 1",
        "gateway_calls_total{method=\"unknown\",outcome=\"method_not_found\"} 1",
        "gateway_call_duration_seconds_count{method=\"demo.echo\"} 1",
        "gateway_queue_depth{queue=\"demo\",state=\"completed\"} 1",
        "gateway_notify_keyspace 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

/// `wss://` with a PEM certificate and key.
#[tokio::test]
async fn serves_tls() {
    let env = Env::new();
    let tls = gateway::tls::self_signed().unwrap();
    let mut config = env.config();
    config.tls = Some(tls.clone());
    let gw = Gw::start(config).await;
    let _worker = crate::support::demo_worker(&env.connection().await).await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&tls.cert_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)] // ring: see gateway/src/tls/mod.rs
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(name, tcp)
        .await
        .unwrap();
    let req = format!(
        "wss://localhost:{}/ws?token={}",
        gw.addr.port(),
        token("alice", 600)
    )
    .into_client_request()
    .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(req, stream).await.unwrap();
    use futures::{SinkExt, StreamExt};
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo", "params": {"tls": true}})
            .to_string(),
    ))
    .await
    .unwrap();
    let reply = loop {
        match ws.next().await.unwrap().unwrap() {
            tokio_tungstenite::tungstenite::Message::Text(t) => {
                break serde_json::from_str::<serde_json::Value>(&t).unwrap()
            }
            _ => continue,
        }
    };
    assert_eq!(reply["result"], json!({"tls": true}));
}

/// A custom publisher on the PRD's channel `job:{jobId}` reaches the socket:
/// progress, then the result.
#[tokio::test]
async fn custom_publishers_on_the_job_channel() {
    let s = Stack::without_worker(|_| {}).await;
    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo", "ack": true}))
        .await;
    let job_id = c.recv().await["params"]["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let client = redis::Client::open(s.env.redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let channel = format!("job:{job_id}");
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(json!({"type": "progress", "percent": 40}).to_string())
        .query_async(&mut con)
        .await
        .unwrap();
    let progress = c.recv().await;
    assert_eq!(progress["method"], "rpc.progress");
    assert_eq!(progress["params"]["progress"], 40);
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(json!({"type": "result", "result": {"custom": true}}).to_string())
        .query_async(&mut con)
        .await
        .unwrap();
    let (r, _) = c.response(json!(1)).await;
    assert_eq!(r["result"], json!({"custom": true}));
}

/// With keyspace notifications unavailable (here: not chosen), the events
/// streams carry results and progress just the same.
#[tokio::test]
async fn events_stream_fallback() {
    let s = Stack::start_with(|c| c.notify = NotifyMode::Events).await;
    let mut c = s.gw.client("alice").await;
    assert_eq!(
        c.call(1, "demo.echo", json!({"e": 1})).await["result"],
        json!({"e": 1})
    );
    c.send(json!({"jsonrpc": "2.0", "id": 2, "method": "demo.sleep", "params": {"ms": 600, "steps": 3}})).await;
    let (r, before) = c.response(json!(2)).await;
    assert_eq!(r["result"], json!({"slept": 600}));
    assert!(
        !before.is_empty(),
        "progress arrives through the events stream too"
    );
    let (_, text) = s.gw.http_get("/metrics").await;
    assert!(text.contains("gateway_notify_keyspace 0"));
}

/// Keyspace notifications are switched on at startup, keeping existing flags.
#[tokio::test]
async fn keyspace_flags_are_merged() {
    let env = Env::new();
    let client = redis::Client::open(env.redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Ex")
        .query_async(&mut con)
        .await
        .unwrap();
    let _gw = Gw::start(env.config()).await;
    let flags: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(&mut con)
        .await
        .unwrap();
    for f in ['E', 'x', 'K', 'h', 'g'] {
        assert!(flags[1].contains(f), "{f} in {}", flags[1]);
    }
    let _ = Client::connect(&_gw.url(&token("a", 60))).await.unwrap();
}

/// `/metrics` on its own listener, behind a bearer token: the main
/// listener no longer serves it, and a scrape without the token is 401.
#[tokio::test]
async fn metrics_on_its_own_listener_with_a_token() {
    let s = Stack::without_worker(|c| {
        c.metrics.metrics_listen = Some(([127, 0, 0, 1], 0).into());
        c.metrics.metrics_token = Some("s3cret".into());
    })
    .await;
    let at = s.gw.metrics_addr.expect("a metrics listener");
    assert_ne!(at, s.gw.addr);
    assert_eq!(s.gw.http_get("/metrics").await.0, 404);
    assert_eq!(s.gw.http_get("/healthz").await.0, 200);
    assert_eq!(http_get_at(at, "/metrics", "").await.0, 401);
    let wrong = "Authorization: Bearer s3creT\r\n";
    assert_eq!(http_get_at(at, "/metrics", wrong).await.0, 401);
    let right = "Authorization: Bearer s3cret\r\n";
    let (status, text) = http_get_at(at, "/metrics", right).await;
    assert_eq!(status, 200);
    assert!(text.contains("gateway_connections 0"), "{text}");
    assert_eq!(http_get_at(at, "/healthz", right).await.0, 404);
}

/// What a scrape reads from Redis is reused within `metrics_cache`: a job
/// added after a scrape shows only once the cache has expired (TTL 0
/// reads every time).
#[tokio::test]
async fn scrapes_reuse_queue_depth_within_the_cache_ttl() {
    let waiting = "gateway_queue_depth{queue=\"demo\",state=\"waiting\"}";
    for (ttl, after) in [(Duration::from_secs(600), 0), (Duration::ZERO, 1)] {
        let s = Stack::without_worker(|c| c.metrics.metrics_cache = ttl).await;
        let (_, text) = s.gw.http_get("/metrics").await;
        assert!(text.contains(&format!("{waiting} 0")), "{text}");
        let mut c = s.gw.client("alice").await;
        c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo", "ack": true}))
            .await;
        assert_eq!(c.recv().await["method"], "rpc.accepted");
        let (_, text) = s.gw.http_get("/metrics").await;
        assert!(
            text.contains(&format!("{waiting} {after}")),
            "ttl {ttl:?}: {text}"
        );
    }
}

/// Reads `/healthz` until `ok` holds of its body.
async fn healthz_until(
    addr: std::net::SocketAddr,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = http_get_at(addr, "/healthz", "").await;
        let health: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if ok(&health) {
            return health;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `--with-worker` (and `--dev`): `/healthz` shows the in-process worker's
/// state, services and last error; a Redis outage while a job runs is
/// that error, and the worker keeps running and finishes the job after.
#[tokio::test]
async fn healthz_reports_the_in_process_worker() {
    let mut env = Env::new();
    let gw = crate::support::process::GatewayProcess::start(&env, &[("GATEWAY_WORKER", "1")]).await;
    let health = healthz_until(gw.addr, "the worker is reported", |h| {
        h["worker"]["state"] == "running"
    })
    .await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["worker"]["last_error"], Value::Null, "{health}");
    assert_eq!(health["worker"]["ended"], json!([]), "{health}");
    let services = health["worker"]["services"].as_array().expect("services");
    assert!(services.contains(&json!("demo")), "{health}");

    let mut c = Client::connect(&gw.url(&token("alice", 600)))
        .await
        .unwrap();
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.sleep",
        "params": {"ms": 600, "steps": 3}, "ack": true}))
        .await;
    // the first progress: the job runs in the gateway's process
    c.recv_until(|m| m["method"] == "rpc.progress").await;
    env.redis.kill();
    let health = healthz_until(gw.addr, "the worker's error", |h| {
        h["worker"]["last_error"].is_object()
    })
    .await;
    assert_eq!(health["worker"]["state"], "running", "it retries: {health}");
    // Every service's loop meets the outage; whichever errs first is named.
    let failed = &health["worker"]["last_error"]["service"];
    assert!(services.contains(failed), "{health}");
    let message = health["worker"]["last_error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains(&format!("127.0.0.1:{}", env.redis.port())),
        "the error names where Redis was: {health}"
    );
    assert!(
        health["worker"]["last_error"]["at_ms"].as_u64().is_some(),
        "{health}"
    );
    env.redis.restart();
    healthz_until(gw.addr, "Redis is back", |h| h["status"] == "ok").await;
}
