//! Attacks, each answered with its documented error or close code while
//! the gateway's memory stays bounded and other clients are still served.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::support::process::{rss_kib, GatewayProcess};
use crate::support::{demo_worker, token, Client, Env, Stack, WAIT};

/// How a socket that stopped reading ended once it read again.
#[derive(Debug, PartialEq)]
enum End {
    /// A close frame with this code.
    Close(u16),
    /// The TCP connection ended without a close frame.
    Dropped,
    /// Every answer arrived and the socket is still open.
    AllAnswered,
}

/// Reads until the socket ends or `expected` answers arrived.
async fn read_to_end(c: &mut Client, expected: usize) -> (End, usize) {
    let mut answers = 0;
    loop {
        match tokio::time::timeout(WAIT, c.ws.next()).await {
            Err(_) => panic!("nothing for {WAIT:?} after {answers} answers"),
            Ok(Some(Ok(Message::Text(_)))) => {
                answers += 1;
                if answers == expected {
                    return (End::AllAnswered, answers);
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                return (End::Close(code), answers);
            }
            Ok(Some(Ok(_))) => {}
            Ok(None | Some(Err(_))) => return (End::Dropped, answers),
        }
    }
}

/// Waits until `n` `demo` jobs have completed (their answers are due).
async fn wait_completed(env: &Env, n: usize) {
    let client = redis::Client::open(env.redis.url()).expect("redis url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let done: usize = redis::cmd("ZCARD")
            .arg("bull:demo:completed")
            .query_async(&mut con)
            .await
            .expect("ZCARD");
        if done >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{done}/{n} jobs completed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client whose kernel receive buffer is small (64 KiB, no autotuning),
/// so that what it does not read stays in the gateway's process instead of
/// in the client's socket buffers.
async fn small_window_client(addr: std::net::SocketAddr, token: &str) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(64 * 1024).expect("SO_RCVBUF");
    let tcp = socket.connect(addr).await.expect("connects");
    let url = format!("ws://{addr}/ws?token={token}");
    let (ws, _) = tokio_tungstenite::client_async(url, tcp)
        .await
        .expect("upgrades");
    Client { ws, protocol: None }
}

/// Sends `n` echo calls of `pad` bytes without reading; stops when a send
/// blocks for a while (the gateway stopped reading) or fails.
async fn flood_without_reading(c: &mut Client, n: usize, pad: usize) -> usize {
    let pad = "x".repeat(pad);
    for i in 0..n {
        let frame =
            json!({"jsonrpc": "2.0", "id": i, "method": "demo.echo", "params": {"pad": pad}});
        let sent = tokio::time::timeout(
            Duration::from_secs(3),
            c.ws.send(Message::text(frame.to_string())),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            return i;
        }
    }
    n
}

/// Four sockets stop reading while hundreds of 50 KB answers pile up: each
/// is cut off with 4001 (delivered after what was already written), and the
/// gateway's resident memory stays bounded while they are still open.
#[tokio::test]
async fn slow_readers_are_cut_off_with_4001_and_memory_stays_bounded() {
    const SOCKETS: usize = 4;
    const CALLS: usize = 400;
    const PAD: usize = 50_000;
    let env = Env::new();
    let _worker = demo_worker(&env.connection().await).await;
    let gw = GatewayProcess::start(
        &env,
        &[
            ("RATE_LIMIT_USER", "0"),
            ("RATE_LIMIT_IP", "0"),
            ("MAX_IN_FLIGHT", "1000"),
            ("CLOSE_GRACE_SECS", "20"),
        ],
    )
    .await;
    let mut probe = Client::connect(&gw.url(&token("probe", 600)))
        .await
        .expect("connects");
    let r = probe.call(1, "demo.echo", json!({"warm": "up"})).await;
    assert_eq!(r["result"], json!({"warm": "up"}));
    let baseline = gw.rss_kib();

    let peak = Peak::watch(gw.pid());
    let mut readers = Vec::new();
    for i in 0..SOCKETS {
        let mut c = small_window_client(gw.addr, &token(&format!("slow{i}"), 600)).await;
        readers.push(tokio::spawn(async move {
            let sent = flood_without_reading(&mut c, CALLS, PAD).await;
            (c, sent)
        }));
    }
    let mut clients = Vec::new();
    for r in readers {
        clients.push(r.await.expect("flood task"));
    }
    let total: usize = clients.iter().map(|(_, sent)| sent).sum();
    wait_completed(&env, total + 1).await;
    // The first one reads again: it must end with 4001, not with every
    // answer (before the fix nothing bounded the queue by bytes).
    let (mut first, sent) = clients.remove(0);
    let (end, answers) = read_to_end(&mut first, sent).await;
    let held = gw.rss_kib();
    eprintln!(
        "gateway RSS: baseline {baseline} KiB, peak {} KiB, with 3 unread sockets open {held} KiB; first socket: {end:?} after {answers}/{sent} answers",
        peak.kib()
    );
    assert_eq!(end, End::Close(4001), "after {answers}/{sent} answers");
    // Reading 80 MB of calls costs the gateway some tens of MB; the unread
    // answers (3 x 20 MB) must not be held on top of that.
    assert!(
        held.saturating_sub(baseline) < 80 * 1024,
        "the gateway holds {} KiB more than at rest",
        held.saturating_sub(baseline)
    );
    for (mut c, sent) in clients {
        let (end, answers) = read_to_end(&mut c, sent).await;
        assert_eq!(end, End::Close(4001), "after {answers}/{sent} answers");
    }
}

/// The highest resident memory of a process, sampled every 20 ms until
/// dropped.
struct Peak {
    kib: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Peak {
    fn watch(pid: u32) -> Peak {
        let kib = Arc::new(AtomicU64::new(rss_kib(pid)));
        let seen = kib.clone();
        let task = tokio::spawn(async move {
            loop {
                seen.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Peak { kib, task }
    }

    fn kib(&self) -> u64 {
        self.kib.load(Ordering::Relaxed)
    }
}

impl Drop for Peak {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One token cannot open sockets without bound: past
/// `max_connections_per_user` the upgrade gets 429 with a clear message,
/// other users still connect, and a closed socket frees its place.
#[tokio::test]
async fn a_connection_flood_from_one_user_gets_429() {
    let s = Stack::without_worker(|c| c.limits.max_connections_per_user = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(s.gw.client("flood").await);
    }
    for _ in 0..20 {
        let refused = Client::connect(&s.gw.url(&token("flood", 600)))
            .await
            .err()
            .expect("refused past the per-user cap");
        assert_eq!(refused.status, 429);
        assert!(
            refused.body.contains("too many connections for this user"),
            "{}",
            refused.body
        );
    }
    let mut other = s.gw.client("bystander").await;
    let r = other.call(1, "rpc.status", json!({"jobId": "x"})).await;
    assert_eq!(r["error"]["code"], -32003, "{r}");
    let mut closing = held.pop().expect("a held socket");
    closing.ws.close(None).await.expect("close");
    let _ = closing.closed().await;
    // The session ends just after the close handshake; its place follows.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match Client::connect(&s.gw.url(&token("flood", 600))).await {
            Ok(c) => {
                held.push(c);
                break;
            }
            Err(r) => assert_eq!(r.status, 429),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Status calls run as tasks of the socket; a flood of them (one batch,
/// handled before any task ends) gets -32005 past `max_in_flight` instead
/// of growing the socket's tasks without bound.
#[tokio::test]
async fn a_call_flood_is_bounded_per_socket() {
    let s = Stack::without_worker(|c| c.limits.max_in_flight = 2).await;
    let mut c = s.gw.client("flooder").await;
    c.send(
        json!({"jsonrpc": "2.0", "method": "demo.echo", "params": {}, "id": "job", "ack": true}),
    )
    .await;
    let job_id = c.recv().await["params"]["jobId"].clone();
    assert!(job_id.is_string(), "{job_id}");
    let batch: Vec<_> = (0..50)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "rpc.status", "params": {"jobId": job_id}}))
        .collect();
    c.send(json!(batch)).await;
    let answers = c.recv().await;
    let codes: Vec<i64> = answers
        .as_array()
        .expect("a batch answer")
        .iter()
        .map(|a| a["error"]["code"].as_i64().unwrap_or(0))
        .collect();
    let limited = codes.iter().filter(|c| **c == -32005).count();
    assert_eq!(limited, 48, "{codes:?}");
    // The socket still serves once its tasks are done.
    let r = c.call(100, "rpc.status", json!({"jobId": job_id})).await;
    assert!(r.get("result").is_some(), "{r}");
}

/// A client that never reads but sends a tiny frame every 50 ms is never
/// idle; its unanswered pings count as stalled writes and cut it off with
/// 4001 after the write-stall timeout (seen once it reads, within the
/// close grace).
#[tokio::test]
async fn a_writer_that_never_reads_is_cut_off_as_stalled() {
    let s = Stack::without_worker(|c| {
        c.limits.ping_interval = Duration::from_millis(100);
        c.limits.idle_timeout = Duration::from_secs(60);
        c.limits.write_stall_timeout = Duration::from_millis(500);
        c.limits.close_grace = Duration::from_secs(30);
    })
    .await;
    let mut c = s.gw.client("chatty").await;
    let tiny = json!({"jsonrpc": "2.0", "method": "rpc.status", "params": {"jobId": "x"}});
    // Sends for 2 s without reading (four times the stall timeout).
    for _ in 0..40 {
        let sent = tokio::time::timeout(
            Duration::from_secs(1),
            c.ws.send(Message::text(tiny.to_string())),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read_to_end(&mut c, usize::MAX).await.0, End::Close(4001));
}

/// An HS256 token with these claims, signed with `key`.
fn signed(claims: serde_json::Value, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .expect("encodes")
}

fn b64(v: serde_json::Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// The JWT list: every bad token gets HTTP 401 before any upgrade, and a
/// good one still connects. (HS/RS confusion against a gateway configured
/// with a public key is in `auth::public_key_algorithms`; here a public key
/// PEM used as the HMAC secret is one more wrong key.)
#[tokio::test]
async fn the_jwt_list_gets_401() {
    let s = Stack::without_worker(|c| {
        c.auth.issuer = Some("issuer".into());
        c.auth.audience = Some("gateway".into());
    })
    .await;
    let now = crate::support::now();
    let key = crate::support::SECRET;
    let good = json!({"sub": "alice", "exp": now + 600, "iss": "issuer", "aud": "gateway"});
    let with = |k: &str, v: serde_json::Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = good.clone();
        c.as_object_mut().expect("claims").remove(k);
        c
    };
    let pem_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a key");
    let cases = [
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(json!({"alg": "none", "typ": "JWT"})),
                b64(good.clone())
            ),
        ),
        (
            "public key as HMAC secret",
            signed(good.clone(), pem_key.public_key_pem().as_bytes()),
        ),
        ("wrong key", signed(good.clone(), b"not the secret")),
        ("expired", signed(with("exp", json!(now - 600)), key)),
        ("not yet valid", signed(with("nbf", json!(now + 600)), key)),
        ("missing iss", signed(without("iss"), key)),
        ("wrong iss", signed(with("iss", json!("mallory")), key)),
        ("missing aud", signed(without("aud"), key)),
        ("wrong aud", signed(with("aud", json!("elsewhere")), key)),
        (
            "far exp, wrong key",
            signed(with("exp", json!(u64::MAX)), b"nope"),
        ),
        ("garbage", "x".repeat(500)),
    ];
    for (what, t) in cases {
        let refused = Client::connect(&s.gw.url(&t)).await.err();
        assert_eq!(refused.map(|r| r.status), Some(401), "{what}");
    }
    // A huge `sub` with a good signature is a user like any other; a huge
    // forged token is refused (401, or 431 from the HTTP layer).
    let huge_sub = signed(with("sub", json!("u".repeat(4000))), key);
    let mut c = Client::connect(&s.gw.url(&huge_sub))
        .await
        .expect("connects");
    let r = c.call(1, "rpc.status", json!({"jobId": "x"})).await;
    assert_eq!(r["error"]["code"], -32003, "{r}");
    // ...up to `max_token_bytes` (8 KiB): a longer one is refused unread,
    // however well signed
    let too_long = signed(with("sub", json!("u".repeat(9000))), key);
    let refused = Client::connect(&s.gw.url(&too_long)).await.err();
    assert_eq!(refused.map(|r| r.status), Some(401), "a 12 KB signed token");
    let huge = signed(with("pad", json!("p".repeat(200_000))), b"forged");
    let bearer = format!("Bearer {huge}");
    let bare = format!("ws://{}/ws", s.gw.addr);
    let refused = Client::connect_with(&bare, &[("authorization", &bearer)])
        .await
        .err();
    let status = refused.map(|r| r.status).unwrap_or(101);
    assert!(
        status == 401 || status == 431,
        "huge forged token: {status}"
    );
    let mut ok = Client::connect(&s.gw.url(&signed(good, key)))
        .await
        .expect("the good token connects");
    let r = ok.call(1, "rpc.status", json!({"jobId": "x"})).await;
    assert_eq!(r["error"]["code"], -32003, "{r}");
}

/// Malformed frames and a garbage flood get their documented errors on
/// the attacker's socket while another client's calls are still answered
/// promptly.
#[tokio::test]
async fn garbage_floods_leave_other_clients_served() {
    let s = Stack::start_with(|c| c.limits.user_rate.per_second = 0.0).await;
    let mut attacker = s.gw.client("attacker").await;
    let mut bystander = s.gw.client("bystander").await;
    let malformed = [
        ("{", -32700),
        ("[]", -32600),
        ("42", -32600),
        (r#"{"jsonrpc": "1.0", "id": 1, "method": "x"}"#, -32600),
        (r#"{"jsonrpc": "2.0", "id": 1, "method": 7}"#, -32600),
        (
            r#"{"jsonrpc": "2.0", "id": 1, "method": "nope.nope"}"#,
            -32601,
        ),
    ];
    for (frame, code) in malformed {
        attacker.send_text(frame.to_string()).await;
        let r = attacker.recv().await;
        assert_eq!(r["error"]["code"], code, "{frame}: {r}");
    }
    let flood = tokio::spawn(async move {
        for i in 0..2000 {
            let junk = format!("{{\"garbage\": {i}, \"{}\"", "z".repeat(i % 300));
            if attacker.ws.send(Message::text(junk)).await.is_err() {
                break;
            }
        }
        attacker
    });
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let started = tokio::time::Instant::now();
        let r = bystander.call(i, "demo.echo", json!({"i": i})).await;
        assert_eq!(r["result"], json!({"i": i}), "{r}");
        slowest = slowest.max(started.elapsed());
    }
    let mut attacker = flood.await.expect("flood task");
    assert!(
        slowest < Duration::from_secs(5),
        "a bystander's call took {slowest:?}"
    );
    let r = attacker.recv().await;
    assert_eq!(r["error"]["code"], -32700, "{r}");
}

/// Another user's job ids, and ids forged to look like them, are unknown
/// to every built-in (-32003); the owner still sees the job.
#[tokio::test]
async fn other_users_job_ids_are_not_found() {
    let s = Stack::start().await;
    let mut alice = s.gw.client("alice").await;
    let r = alice.call(1, "demo.echo", json!({"secret": 1})).await;
    let theirs = r["jobId"].as_str().expect("a job id").to_string();
    let mut mallory = s.gw.client("mallory").await;
    let forged = theirs.replace("alice", "mallory");
    for (i, id) in [theirs.as_str(), forged.as_str(), "../../x", ""]
        .iter()
        .enumerate()
    {
        for method in ["rpc.status", "rpc.cancel", "rpc.subscribe"] {
            let r = mallory.call(i as i64, method, json!({"jobId": id})).await;
            let code = r["error"]["code"].as_i64();
            // A real or forged-looking id: not found; malformed: invalid params.
            let allowed: &[i64] = if i < 2 { &[-32003] } else { &[-32003, -32602] };
            assert!(
                code.is_some_and(|c| allowed.contains(&c)),
                "{method} {id:?}: {r}"
            );
            assert!(r.get("result").is_none(), "{method} {id:?}: {r}");
        }
    }
    let r = alice.call(2, "rpc.status", json!({"jobId": theirs})).await;
    assert!(r.get("result").is_some(), "{r}");
}
