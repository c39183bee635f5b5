//! `--dev`: the built-in worker services in this process (cargo feature
//! `dev`), and a banner with where to connect, a token for user `dev` valid
//! for a day, and a one-line client to try.

use std::net::SocketAddr;

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

/// Prints the banner (to stdout, on purpose: it is the dev's instructions).
pub fn print_banner(addr: SocketAddr, tls: bool, secret: Option<&[u8]>, worker: bool) {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let scheme = if tls { "wss" } else { "ws" };
    let Some(secret) = secret else {
        println!(
            "gateway (dev) on {scheme}://{host}:{}/ws — sign tokens with your configured key",
            addr.port()
        );
        return;
    };
    let exp = jsonwebtoken::get_current_timestamp() + 24 * 3600;
    let token = match encode(
        &Header::default(),
        &json!({"sub": "dev", "exp": exp}),
        &EncodingKey::from_secret(secret),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot sign the dev token: {e}");
            return;
        }
    };
    let url = format!("{scheme}://{host}:{}/ws?token={token}", addr.port());
    let insecure = if tls {
        "NODE_TLS_REJECT_UNAUTHORIZED=0 "
    } else {
        ""
    };
    println!("gateway (dev mode)");
    println!("  url:    {url}");
    println!("  token:  {token}   (sub=dev, valid 24 h)");
    println!("  try:    {insecure}node --experimental-websocket -e \"const s=new WebSocket('{url}');s.onopen=()=>s.send(JSON.stringify({{jsonrpc:'2.0',id:1,method:'demo.echo',params:{{hello:'world'}}}}));s.onmessage=e=>{{console.log(e.data);s.close()}}\"");
    if worker {
        println!("  worker: demo, data and analysis run in this process; Ctrl-C stops everything");
    } else {
        println!("  worker: none in this process (built without the `dev` feature); run `worker`");
    }
}

/// The running in-process worker.
#[cfg(feature = "dev")]
pub type Worker = worker_runtime::Runtime;

/// Without the `dev` feature there is no in-process worker.
#[cfg(not(feature = "dev"))]
#[derive(Debug)]
pub enum Worker {}

#[cfg(not(feature = "dev"))]
impl Worker {
    /// Nothing to close: no value of this type exists.
    pub async fn close(self) {
        match self {}
    }
}

/// What `/healthz` shows of the in-process worker: `state` (running,
/// stopping, stopped), `services`, `ended` (services whose loop ended on its
/// own) and `last_error` (`service`, `message`, `at_ms`) or null.
#[cfg(feature = "dev")]
pub fn probe(worker: &Worker) -> impl Fn() -> serde_json::Value + Send + Sync + 'static {
    let health = worker.health();
    move || {
        serde_json::to_value(health.report())
            .unwrap_or_else(|e| json!({"state": "unknown", "error": e.to_string()}))
    }
}

#[cfg(not(feature = "dev"))]
pub fn probe(worker: &Worker) -> impl Fn() -> serde_json::Value + Send + Sync + 'static {
    match *worker {}
    #[allow(unreachable_code)]
    || serde_json::Value::Null
}

/// The built-in services, in this process (see `worker --help` for a
/// separate worker process).
#[cfg(feature = "dev")]
pub async fn start_worker(redis_url: &str, prefix: &str) -> anyhow::Result<Option<Worker>> {
    use anyhow::Context as _;
    use worker_runtime::{services, Registry, Runtime, RuntimeOptions};
    let mut registry = Registry::new();
    for name in services::ALL {
        if let Some(service) = services::by_name(name) {
            registry.merge(service?)?;
        }
    }
    let conn = bullmq_wire::Connection::connect(
        bullmq_wire::RedisOptions::new(redis_url).with_prefix(prefix),
    )
    .await
    .context("connecting the in-process worker")?;
    let options = RuntimeOptions {
        worker: bullmq_wire::WorkerOptions {
            concurrency: 16,
            name: Some("gateway-dev".into()),
            // the gateway in this process has each result without a read
            publish_results: true,
            ..Default::default()
        },
        ..Default::default()
    };
    tracing::info!(methods = ?registry.methods(), "running the built-in worker services in this process");
    Ok(Some(Runtime::start(&conn, registry, options).await?))
}

/// Built without the `dev` feature: `--dev` runs without the built-in
/// services (`main` refuses `--with-worker`).
#[cfg(not(feature = "dev"))]
pub async fn start_worker(_redis_url: &str, _prefix: &str) -> anyhow::Result<Option<Worker>> {
    tracing::warn!("built without the `dev` feature: no worker services in this process");
    Ok(None)
}
