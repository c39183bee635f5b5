//! The `gateway` binary: parse flags, set up logging, start Redis when
//! REDIS_URL is unset, and run the gateway until SIGTERM or Ctrl-C.

mod cli;
mod dev;

use anyhow::Context as _;
use clap::Parser;
use gateway::embedded_redis::EmbeddedRedis;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    init_tracing(cli.log_format);
    let (redis_url, _embedded) = match &cli.redis_url {
        Some(url) => (url.clone(), None),
        None => {
            let server = EmbeddedRedis::start(&cli.redis_server_bin, &cli.redis_data_dir)?;
            tracing::info!(url = %server.url(), dir = %cli.redis_data_dir.display(), "started redis-server (REDIS_URL unset)");
            (server.url(), Some(server))
        }
    };
    let dev = cli.dev;
    let worker = if cli.with_worker || dev {
        Some(start_worker(&redis_url, &cli.prefix).await?)
    } else {
        None
    };
    let setup = cli.into_setup(redis_url)?;
    let gw = gateway::Gateway::bind(setup.config)
        .await
        .context("starting the gateway")?;
    if dev {
        dev::print_banner(gw.local_addr(), gw.is_tls(), setup.dev_secret.as_deref());
    }
    gw.serve(shutdown_signal()).await?;
    if let Some(worker) = worker {
        worker.close().await;
    }
    Ok(())
}

/// The built-in services, in this process (see `worker --help` for a
/// separate worker process).
async fn start_worker(redis_url: &str, prefix: &str) -> anyhow::Result<worker_runtime::Runtime> {
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
            ..Default::default()
        },
        ..Default::default()
    };
    tracing::info!(methods = ?registry.methods(), "running the built-in worker services in this process");
    Ok(Runtime::start(&conn, registry, options).await?)
}

fn init_tracing(format: cli::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("gateway=info,bullmq_wire=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        cli::LogFormat::Json => builder.json().init(),
        cli::LogFormat::Text => builder.init(),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
