//! Test support: a redis-server per test, a `demo` worker, gateways bound
//! on 127.0.0.1:0 through `Gateway::bind`/`serve`, tokens, and a WebSocket
//! client that waits on frames with generous timeouts (never fixed sleeps).

#![allow(dead_code)] // each test module uses a different part

pub mod process;
pub mod raw;

use std::net::SocketAddr;
use std::time::Duration;

use bullmq_wire::testing::RedisServer;
use bullmq_wire::{Connection, JobError, Worker, WorkerOptions};
use futures::{SinkExt, StreamExt};
use gateway::auth::AuthConfig;
use gateway::Config;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub const SECRET: &[u8] = b"test-secret-of-the-gateway";
/// How long a test waits for any one event.
pub const WAIT: Duration = Duration::from_secs(15);

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// An HS256 token for `sub`, expiring `exp_in` seconds from now (negative: in the past).
pub fn token(sub: &str, exp_in: i64) -> String {
    let exp = (now() as i64 + exp_in) as u64;
    encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": sub, "exp": exp}),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

/// A test's Redis.
pub struct Env {
    pub redis: RedisServer,
}

impl Env {
    pub fn new() -> Self {
        Env {
            redis: RedisServer::start(),
        }
    }

    /// A config with the `demo` service, plain ws, and test-friendly limits.
    pub fn config(&self) -> Config {
        let mut c = Config::new(self.redis.url(), AuthConfig::hs256(SECRET.to_vec()));
        c.services.add_list("demo").unwrap();
        c.limits.shutdown_grace = Duration::from_secs(5);
        c
    }

    pub async fn connection(&self) -> Connection {
        Connection::open(&self.redis.url()).await.unwrap()
    }
}

/// A gateway serving in the background.
pub struct Gw {
    pub addr: SocketAddr,
    /// `/metrics`' own listener, when configured.
    pub metrics_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Gw {
    pub async fn start(config: Config) -> Self {
        let gw = gateway::Gateway::bind(config).await.expect("gateway binds");
        let addr = gw.local_addr();
        let metrics_addr = gw.metrics_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            gw.serve(async {
                let _ = stopped.await;
            })
            .await
            .expect("gateway serves");
        });
        Gw {
            addr,
            metrics_addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, token: &str) -> String {
        format!("ws://{}/ws?token={token}", self.addr)
    }

    /// SIGTERM-like: resolves the shutdown future and waits for `serve` to return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("gateway stops in time")
                .expect("serve task");
        }
    }

    pub async fn client(&self, sub: &str) -> Client {
        Client::connect(&self.url(&token(sub, 600)))
            .await
            .expect("connects")
    }

    pub async fn http_get(&self, path: &str) -> (u16, String) {
        http_get_at(self.addr, path, "").await
    }
}

/// A GET with extra header lines (each ending in `\r\n`); status and body.
pub async fn http_get_at(addr: SocketAddr, path: &str, headers: &str) -> (u16, String) {
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&buf).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A WebSocket client.
pub struct Client {
    pub ws: WebSocketStream<TcpStream>,
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
}

/// How a connection attempt was refused.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

impl Client {
    pub async fn connect(url: &str) -> Result<Client, Refused> {
        Self::connect_with(url, &[]).await
    }

    /// Connects with extra request headers.
    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Result<Client, Refused> {
        let mut req = url.into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        let host = req.uri().authority().unwrap().to_string();
        let tcp = TcpStream::connect(host).await.unwrap();
        match tokio_tungstenite::client_async(req, tcp).await {
            Ok((ws, resp)) => {
                let protocol = resp
                    .headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().unwrap().to_string());
                Ok(Client { ws, protocol })
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let status = resp.status().as_u16();
                let body = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).to_string())
                    .unwrap_or_default();
                Err(Refused { status, body })
            }
            Err(e) => panic!("unexpected handshake error: {e}"),
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_text(&mut self, t: String) {
        self.ws.send(Message::text(t)).await.expect("send");
    }

    /// The next text frame, parsed (pings are answered by tungstenite).
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(t.as_str()).expect("JSON from the gateway")
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Receives until `pred` holds; returns that frame and what came before.
    pub async fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let v = self.recv().await;
            if pred(&v) {
                return (v, before);
            }
            before.push(v);
        }
    }

    /// The response with this id (notifications before it are returned too).
    pub async fn response(&mut self, id: Value) -> (Value, Vec<Value>) {
        self.recv_until(|v| v.get("id") == Some(&id) && v.get("method").is_none())
            .await
    }

    /// Sends one call and returns its response.
    pub async fn call(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        self.response(json!(id)).await.0
    }

    /// The client's side of a retryable refusal: calls `demo.echo` (ids
    /// after `after`) with backoff until one is answered, each refusal
    /// meanwhile being retryable, for at most [`WAIT`].
    pub async fn echo_until_answered(&mut self, after: i64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut id = after;
        loop {
            id += 1;
            let r = self.call(id, "demo.echo", json!({"id": id})).await;
            if r.get("result").is_some() {
                assert_eq!(r["result"], json!({"id": id}));
                return;
            }
            assert_eq!(r["error"]["data"]["retryable"], true, "{r}");
            assert!(
                tokio::time::Instant::now() < deadline,
                "still refused after {WAIT:?}: {r}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for the server's close frame; returns its code.
    pub async fn closed(&mut self) -> u16 {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a close in time");
            match msg {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(Message::Close(None))) => return u16::from(CloseCode::Status),
                Some(Ok(_)) => continue,
                None => return 0,
                Some(Err(e)) => {
                    eprintln!("socket ended with an error: {e}");
                    return 0;
                }
            }
        }
    }
}

/// Runs the `demo` service: `echo` returns its params; `sleep {ms, steps}`
/// reports progress `{step, of}` each step; `fail {message}` fails;
/// `flaky {failures}` fails that many attempts, then returns
/// `{attempt}`; `wait` blocks until told (used for cancel tests).
pub async fn demo_worker(conn: &Connection) -> Worker {
    let opts = WorkerOptions {
        concurrency: 16,
        ..Default::default()
    };
    demo_worker_with(conn, opts).await
}

/// [`demo_worker`] with other options (short locks for failover tests).
pub async fn demo_worker_with(conn: &Connection, opts: WorkerOptions) -> Worker {
    Worker::start("demo", conn, opts, |mut job| async move {
        match job.name.as_str() {
            "echo" => Ok(job.data.clone()),
            "sleep" => {
                let ms = job.data["ms"].as_u64().unwrap_or(100);
                let steps = job.data["steps"].as_u64().unwrap_or(1).max(1);
                for step in 1..=steps {
                    tokio::time::sleep(Duration::from_millis(ms / steps)).await;
                    job.update_progress(json!({"step": step, "of": steps}))
                        .await
                        .map_err(|e| JobError::new(e.to_string()))?;
                }
                Ok(json!({"slept": ms}))
            }
            "fail" => Err(JobError::new(
                job.data["message"]
                    .as_str()
                    .unwrap_or("failed on purpose")
                    .to_string(),
            )),
            "flaky" => {
                let failures = job.data["failures"].as_i64().unwrap_or(1);
                if job.attempts_made < failures {
                    Err(JobError::new(format!(
                        "flaky failure {}",
                        job.attempts_made + 1
                    )))
                } else {
                    Ok(json!({"attempt": job.attempts_made + 1}))
                }
            }
            other => Err(JobError::unrecoverable(format!("unknown method {other}"))),
        }
    })
    .await
    .expect("worker starts")
}

/// A gateway with a demo worker, on a fresh Redis.
pub struct Stack {
    pub env: Env,
    pub gw: Gw,
    pub worker: Option<Worker>,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let env = Env::new();
        let mut config = env.config();
        tweak(&mut config);
        let gw = Gw::start(config).await;
        let worker = demo_worker(&env.connection().await).await;
        Stack {
            env,
            gw,
            worker: Some(worker),
        }
    }

    /// A stack without a worker (jobs stay waiting).
    pub async fn without_worker(tweak: impl FnOnce(&mut Config)) -> Self {
        let env = Env::new();
        let mut config = env.config();
        tweak(&mut config);
        let gw = Gw::start(config).await;
        Stack {
            env,
            gw,
            worker: None,
        }
    }
}
