//! The `gateway` binary: resolve the settings (defaults, file, environment,
//! flags), set up logging, start Redis when REDIS_URL is unset, and run the
//! gateway until SIGTERM or Ctrl-C.

mod cli;
mod dev;

use anyhow::Context as _;
use gateway::config::LogFormat;
use gateway::embedded_redis::EmbeddedRedis;

/// mimalloc, not glibc's malloc: measured in BENCHMARKS.md ("Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let loaded = cli::Cli::parse_args().load()?;
    service_main::runtime(loaded.settings.server.threads)
        .context("starting the runtime")?
        .block_on(run(loaded))
}

async fn run(loaded: cli::Loaded) -> anyhow::Result<()> {
    let server = &loaded.settings.server;
    service_main::init_tracing(
        server.log_format == LogFormat::Json,
        "gateway=info,bullmq_wire=info",
    );
    let redis = &loaded.settings.redis;
    let (redis_url, _embedded) = match &redis.redis_url {
        Some(url) => (url.clone(), None),
        None => {
            let server = EmbeddedRedis::start(&redis.redis_server_bin, &redis.redis_data_dir)?;
            tracing::info!(url = %server.url(), dir = %redis.redis_data_dir.display(), "started redis-server (REDIS_URL unset)");
            (server.url(), Some(server))
        }
    };
    let dev = server.dev;
    if server.with_worker && !cfg!(feature = "dev") {
        anyhow::bail!("--with-worker needs the gateway built with the `dev` feature");
    }
    let worker = if server.with_worker || dev {
        dev::start_worker(&redis_url, &redis.prefix).await?
    } else {
        None
    };
    let setup = loaded.into_setup(redis_url)?;
    let gw = gateway::Gateway::bind(setup.config)
        .await
        .context("starting the gateway")?;
    if let Some(worker) = &worker {
        gw.report_worker(dev::probe(worker));
    }
    if dev {
        dev::print_banner(
            gw.local_addr(),
            gw.is_tls(),
            setup.dev_secret.as_deref(),
            worker.is_some(),
        );
    }
    gw.serve(service_main::shutdown_signal()).await?;
    if let Some(worker) = worker {
        worker.close().await;
    }
    Ok(())
}
