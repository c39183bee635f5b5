//! `worker`: serves built-in services on BullMQ queues.
//!
//! `worker --redis-url redis://127.0.0.1:6379 demo` runs queue `demo`
//! (`echo`, `sleep`, `fail`) next to any Node or Python BullMQ workers.

use std::time::Duration;

use anyhow::Context as _;
use bullmq_wire::{Connection, RedisOptions, WorkerOptions};
use clap::Parser;
use worker_runtime::{services, Registry, Runtime, RuntimeOptions};

/// mimalloc, not glibc's malloc, as in the gateway binary: measured in
/// BENCHMARKS.md ("Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs Rust workers for `service.method` jobs on BullMQ queues.
#[derive(Debug, Parser)]
#[command(name = "worker", version, long_about = None)]
struct Cli {
    /// Redis URL: `redis://[user:pass@]host:port[/db]` (`rediss://` for
    /// TLS), `redis+cluster://host:port,host:port` for a Redis Cluster
    /// (then use a hash-tagged prefix such as `{bull}`), or
    /// `redis+sentinel://host:port,host:port/mastername` for Sentinel.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Key prefix shared with the other BullMQ clients.
    #[arg(long, env = "BULLMQ_PREFIX", default_value = "bull")]
    prefix: String,
    /// Jobs processed at once, per service.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 10)]
    concurrency: usize,
    /// Worker name shown by `Queue.getWorkers()` and Bull Board.
    #[arg(long, env = "WORKER_NAME")]
    name: Option<String>,
    /// Milliseconds a job's lock lasts without renewal; a worker killed mid-job
    /// has its job recovered within this plus the stalled interval.
    #[arg(long, env = "WORKER_LOCK_DURATION_MS", default_value_t = 30_000)]
    lock_duration: u64,
    /// Milliseconds between stalled-job sweeps (the first runs at start).
    #[arg(long, env = "WORKER_STALLED_INTERVAL_MS", default_value_t = 30_000)]
    stalled_interval: u64,
    /// Runtime threads; 0: one per core; 1: tokio's single-thread
    /// scheduler. On a small machine shared with Redis and a gateway, 1
    /// spends less CPU per job (no wake-ups between threads;
    /// BENCHMARKS.md, "Runtime threads").
    #[arg(long, env = "WORKER_THREADS", default_value_t = 0)]
    threads: usize,
    /// Seconds running jobs get to finish on shutdown before being handed back.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    shutdown_grace: u64,
    /// Also publish each completed job's result on the Redis channel
    /// `job:{jobId}`, so the gateway has it without reading the job back
    /// (one PUBLISH per completed job; 1/0, true/false, yes/no, on/off).
    #[arg(
        long,
        env = "WORKER_PUBLISH_RESULTS",
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_value = "true",
        default_missing_value = "true",
        value_parser = service_main::parse_bool
    )]
    publish_results: bool,
    /// Log as JSON lines (1/0, true/false, yes/no, on/off; the flag alone: true).
    #[arg(
        long,
        env = "LOG_JSON",
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_value = "false",
        default_missing_value = "true",
        value_parser = service_main::parse_bool
    )]
    log_json: bool,
    /// Services to serve: demo, data, analysis (default: all).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(services::ALL))]
    services: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    service_main::runtime(cli.threads)
        .context("starting the runtime")?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    service_main::init_tracing(cli.log_json, "info");
    let names: Vec<String> = if cli.services.is_empty() {
        services::ALL.iter().map(|s| s.to_string()).collect()
    } else {
        cli.services
    };
    let mut registry = Registry::new();
    for name in &names {
        let service =
            services::by_name(name).with_context(|| format!("unknown service {name}"))??;
        registry.merge(service)?;
    }
    let conn = Connection::connect(RedisOptions::new(&cli.redis_url).with_prefix(&cli.prefix))
        .await
        .with_context(|| "cannot connect to Redis; check --redis-url / REDIS_URL".to_string())?;
    let options = RuntimeOptions {
        worker: WorkerOptions {
            concurrency: cli.concurrency,
            name: cli.name.clone(),
            lock_duration: Duration::from_millis(cli.lock_duration),
            stalled_interval: Duration::from_millis(cli.stalled_interval),
            publish_results: cli.publish_results,
            ..Default::default()
        },
        shutdown_grace: Duration::from_secs(cli.shutdown_grace),
    };
    let runtime = Runtime::start(&conn, registry.clone(), options).await?;
    tracing::info!(methods = ?registry.methods(), concurrency = cli.concurrency, "worker ready; Ctrl-C or SIGTERM to stop");
    runtime.run_until(service_main::shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::Parser;

    #[test]
    fn log_json_takes_what_people_type() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("worker").chain(args.iter().copied()))
                .map(|c| c.log_json)
        };
        assert!(!parse(&[]).unwrap());
        assert!(parse(&["--log-json"]).unwrap());
        assert!(parse(&["--log-json=1"]).unwrap());
        assert!(!parse(&["--log-json=Off"]).unwrap());
        assert!(parse(&["--log-json=maybe"]).is_err());
        // the environment variable goes through the same parser (this is
        // the only test of this binary that reads the environment)
        std::env::set_var("LOG_JSON", "yes");
        let from_env = parse(&[]);
        std::env::remove_var("LOG_JSON");
        assert!(from_env.unwrap());
    }

    #[test]
    fn threads_default_to_one_per_core_and_take_a_count() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("worker").chain(args.iter().copied()))
                .map(|c| c.threads)
        };
        assert_eq!(parse(&[]).unwrap(), 0);
        assert_eq!(parse(&["--threads", "1"]).unwrap(), 1);
        assert!(parse(&["--threads", "-1"]).is_err());
    }

    #[test]
    fn lock_duration_and_stalled_interval_are_flags() {
        let cli = Cli::try_parse_from([
            "worker",
            "--lock-duration",
            "1000",
            "--stalled-interval",
            "500",
        ])
        .unwrap();
        assert_eq!((cli.lock_duration, cli.stalled_interval), (1000, 500));
    }
}
