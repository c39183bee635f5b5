//! The load client: sockets that keep a fixed number of calls in flight and
//! record each round trip, over ws:// or wss:// (trusting the run's
//! throwaway certificate).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::SECRET;

pub(crate) fn token(sub: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 6 * 3600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": sub, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// A throwaway certificate for `localhost` and `127.0.0.1`, written as PEM
/// files for both servers; the load client trusts it and nothing else.
#[derive(Debug, Clone)]
pub(crate) struct Tls {
    pub(crate) cert_file: PathBuf,
    pub(crate) key_file: PathBuf,
}

impl Tls {
    pub(crate) fn generate(dir: &Path) -> Tls {
        let ck = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .unwrap();
        let tls = Tls {
            cert_file: dir.join("bench-cert.pem"),
            key_file: dir.join("bench-key.pem"),
        };
        std::fs::write(&tls.cert_file, ck.cert.pem()).unwrap();
        std::fs::write(&tls.key_file, ck.signing_key.serialize_pem()).unwrap();
        tls
    }

    /// A client config trusting only the certificate in `cert_file`.
    pub(crate) fn connector(cert_file: &Path) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(cert_file).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        // ring, like the gateway (see gateway/src/tls/mod.rs), offering
        // X25519 first as browsers, Node and OpenSSL do: ring's provider
        // lists P-384 first, and the gateway's rustls takes the client's
        // first group it supports, so every connection of the load cost it a
        // P-384 key exchange that browsers and Node do not ask for (its CPU
        // per authenticated connection here: 1.0-1.1 ms with P-384, 0.26 ms
        // with X25519).
        #[allow(deprecated)]
        let mut provider = rustls::crypto::ring::default_provider();
        provider.kx_groups = vec![
            rustls::crypto::ring::kx_group::X25519,
            rustls::crypto::ring::kx_group::SECP256R1,
            rustls::crypto::ring::kx_group::SECP384R1,
        ];
        let provider = Arc::new(provider);
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

/// Where the load goes: `ws://127.0.0.1:<port>/ws`, or `wss://` with a
/// connector trusting the run's certificate.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) port: u16,
    pub(crate) tls: Option<TlsConnector>,
}

impl Target {
    pub(crate) fn new(port: u16, cert_file: Option<&Path>) -> Target {
        Target {
            port,
            tls: cert_file.map(Tls::connector),
        }
    }
    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://127.0.0.1:{}/ws", self.port)
    }
}

/// The client's transport: TCP, or TLS over TCP.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub(crate) type Ws = tokio_tungstenite::WebSocketStream<Stream>;

pub(crate) async fn connect(
    target: &Target,
    sub: &str,
    config: WebSocketConfig,
) -> Result<Ws, String> {
    let tcp = TcpStream::connect(("127.0.0.1", target.port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let stream = match &target.tls {
        None => Stream::Plain(tcp),
        Some(connector) => {
            let name = ServerName::try_from("localhost").unwrap();
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            Stream::Tls(Box::new(tls))
        }
    };
    let url = format!("{}?token={}", target.url(), token(sub));
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|e| format!("WebSocket handshake: {e}"))?;
    Ok(ws)
}

pub(crate) fn call(id: u64, text: &str) -> Message {
    Message::text(json!({"jsonrpc": "2.0", "id": id, "method": "demo.echo", "params": {"i": id, "text": text}}).to_string())
}

/// Both peers up: one call answered (retried while the worker starts).
pub(crate) async fn ready_call(base: &Target) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            let mut ws = connect(base, "bench-ready", WebSocketConfig::default()).await?;
            ws.send(call(1, "ready")).await.map_err(|e| e.to_string())?;
            while let Some(m) = ws.next().await {
                if let Message::Text(t) = m.map_err(|e| e.to_string())? {
                    let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
                    if v["id"] == json!(1) {
                        return if v["result"]["echo"]["i"] == json!(1) {
                            Ok(())
                        } else {
                            Err(format!("unexpected answer {v}"))
                        };
                    }
                }
            }
            Err("closed".to_string())
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) if Instant::now() > deadline => return Err(e),
            Err(_) if Instant::now() > deadline => return Err("no answer to a call in 30 s".into()),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

pub(crate) struct Load {
    pub(crate) calls: usize,
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
    pub(crate) seconds: f64,
    /// Round trips in microseconds.
    pub(crate) hist: Histogram<u64>,
}

impl Load {
    pub(crate) fn rate(&self) -> f64 {
        self.calls as f64 / self.seconds
    }
    pub(crate) fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

/// `sockets` sockets (connected before the clock starts), each keeping
/// `in_flight` calls outstanding, `calls` calls in all.
pub(crate) async fn run_load(
    base: &Target,
    sockets: usize,
    in_flight: usize,
    calls: usize,
    payload: usize,
    timeout: Duration,
) -> Result<Load, String> {
    let config = WebSocketConfig::default().write_buffer_size(0);
    let mut conns = Vec::with_capacity(sockets);
    for s in 0..sockets {
        conns.push(connect(base, &format!("bench-{s}"), config).await?);
    }
    let text = "x".repeat(payload);
    let start = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            let n = calls / sockets + usize::from(i < calls % sockets);
            tokio::spawn(drive(ws, n, in_flight, text.clone()))
        })
        .collect();
    let joined = tokio::time::timeout(timeout, futures::future::join_all(tasks))
        .await
        .map_err(|_| format!("not done after {} s", timeout.as_secs()))?;
    let seconds = start.elapsed().as_secs_f64();
    let mut load = Load {
        calls,
        errors: 0,
        first_error: None,
        seconds,
        hist: new_hist(),
    };
    for r in joined {
        let (hist, errors, first_error) = r.map_err(|e| e.to_string())??;
        load.hist.add(&hist).unwrap();
        load.errors += errors;
        load.first_error = load.first_error.or(first_error);
    }
    Ok(load)
}

pub(crate) fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).unwrap()
}

pub(crate) type Drive = Result<(Histogram<u64>, usize, Option<String>), String>;

/// One socket: keeps `in_flight` calls outstanding until `n` are answered.
pub(crate) async fn drive(ws: Ws, n: usize, in_flight: usize, text: String) -> Drive {
    let (mut tx, mut rx) = ws.split();
    let mut hist = new_hist();
    let mut sent: HashMap<u64, Instant> = HashMap::with_capacity(in_flight * 2);
    let (mut next, mut done, mut errors, mut first_error) = (0u64, 0usize, 0usize, None);
    while (next as usize) < n.min(in_flight) {
        sent.insert(next, Instant::now());
        tx.feed(call(next, &text))
            .await
            .map_err(|e| e.to_string())?;
        next += 1;
    }
    tx.flush().await.map_err(|e| e.to_string())?;
    while done < n {
        let msg = rx
            .next()
            .await
            .ok_or("socket closed by the server")?
            .map_err(|e| e.to_string())?;
        let Message::Text(t) = msg else {
            if let Message::Close(f) = msg {
                return Err(format!("closed by the server: {f:?}"));
            }
            continue;
        };
        let v: Value =
            serde_json::from_str(&t).map_err(|e| format!("bad JSON from the server: {e}"))?;
        // Notifications (rpc.accepted, rpc.progress) carry their id in params.
        let Some(id) = v.get("id").and_then(Value::as_u64) else {
            if v.get("method").is_none() {
                errors += 1;
                first_error.get_or_insert_with(|| t.to_string());
            }
            continue;
        };
        let Some(t0) = sent.remove(&id) else {
            return Err(format!("answer to an unknown id: {t}"));
        };
        hist.record(t0.elapsed().as_micros().max(1) as u64).unwrap();
        if v["result"]["echo"]["i"] != json!(id) {
            errors += 1;
            first_error.get_or_insert_with(|| t.to_string());
        }
        done += 1;
        if (next as usize) < n {
            sent.insert(next, Instant::now());
            tx.send(call(next, &text))
                .await
                .map_err(|e| e.to_string())?;
            next += 1;
        }
    }
    let _ = tx.send(Message::Close(None)).await;
    Ok((hist, errors, first_error))
}
