//! A process fleet for fault tests and the soak program: one `redis-server`
//! (AOF, restartable on its port), `gateway` binaries, Rust `worker`
//! binaries and Node BullMQ workers, all serving queue `demo` on loopback;
//! clients that re-attach after losing a socket ([`client`]); and the
//! ledger of what was acknowledged and delivered ([`ledger`]).
//!
//! The binaries are looked up next to the running test or example
//! (`target/<profile>/`), or in `GATEWAY_BIN` / `WORKER_BIN`;
//! [`build_binaries`] builds them with the same profile.

pub mod client;
pub mod gateway;
pub mod ledger;
pub mod proc;
pub mod redis;
pub mod workers;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

pub use client::Plan;
pub use gateway::Gateway;
pub use ledger::{Counters, Ledger};
pub use redis::{Fsync, Redis};
pub use workers::{Kind, WorkerProc};

/// What went wrong starting or steering the fleet.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A process did not start, died, or did not get ready.
    #[error("{0}")]
    Process(String),
    /// Reading Redis for the audit failed.
    #[error("redis: {0}")]
    Redis(String),
}

impl FleetError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        FleetError::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn redis(e: ::redis::RedisError) -> Self {
        FleetError::Redis(e.to_string())
    }
}

/// `interop-tests/src/fleet/`, where `node_worker.cjs` is.
pub fn fleet_dir() -> PathBuf {
    crate::clients::interop_dir().join("src/fleet")
}

pub(crate) fn free_port() -> Result<u16, FleetError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| FleetError::io("bind a free port", e))?;
    Ok(l.local_addr()
        .map_err(|e| FleetError::io("local address", e))?
        .port())
}

/// Where the `gateway` and `worker` binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The gateway.
    pub gateway: PathBuf,
    /// The Rust worker.
    pub worker: PathBuf,
}

/// `target/<profile>/` of the running executable (tests sit in `deps/`,
/// examples in `examples/`).
fn profile_dir() -> Result<PathBuf, FleetError> {
    let exe = std::env::current_exe().map_err(|e| FleetError::io("current executable", e))?;
    let dir = exe
        .parent()
        .ok_or_else(|| FleetError::Process("executable has no directory".into()))?;
    Ok(if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    })
}

/// Builds `gateway` and `worker` with the profile of the running
/// executable (`cargo build`, a no-op when they are fresh), then returns
/// where they are. `GATEWAY_BIN` / `WORKER_BIN` skip the build.
pub fn build_binaries() -> Result<Binaries, FleetError> {
    if let (Some(g), Some(w)) = (
        std::env::var_os("GATEWAY_BIN"),
        std::env::var_os("WORKER_BIN"),
    ) {
        return Ok(Binaries {
            gateway: g.into(),
            worker: w.into(),
        });
    }
    let dir = profile_dir()?;
    let release = dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(crate::clients::interop_dir().join(".."))
        .args([
            "build", "--locked", "-p", "gateway", "-p", "worker", "--bins",
        ]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .map_err(|e| FleetError::io("run cargo build", e))?;
    if !status.success() {
        return Err(FleetError::Process(format!("{cmd:?} failed")));
    }
    let b = Binaries {
        gateway: dir.join("gateway"),
        worker: dir.join("worker"),
    };
    for p in [&b.gateway, &b.worker] {
        if !p.exists() {
            return Err(FleetError::Process(format!(
                "{} is missing after cargo build (another CARGO_TARGET_DIR?); set GATEWAY_BIN and WORKER_BIN",
                p.display()
            )));
        }
    }
    Ok(b)
}

/// How many of each process.
#[derive(Debug, Clone)]
pub struct Spec {
    /// AOF fsync policy of Redis.
    pub fsync: Fsync,
    /// Gateways.
    pub gateways: usize,
    /// Rust `worker` processes.
    pub rust_workers: usize,
    /// Node workers.
    pub node_workers: usize,
    /// Concurrency of each worker.
    pub concurrency: usize,
    /// How long gateways keep results (`--keep-completed-secs`).
    pub keep_completed_secs: u64,
}

/// Every process of one fleet; all are killed when it is dropped.
#[derive(Debug)]
pub struct Fleet {
    /// Logs and Redis data.
    pub dir: tempfile::TempDir,
    /// The Redis server.
    pub redis: Redis,
    /// The gateways.
    pub gateways: Vec<Gateway>,
    /// The workers.
    pub workers: Vec<WorkerProc>,
}

impl Fleet {
    /// Starts Redis, then the gateways and workers of `spec`.
    pub fn start(bins: &Binaries, spec: &Spec) -> Result<Fleet, FleetError> {
        let dir = tempfile::tempdir().map_err(|e| FleetError::io("temp dir", e))?;
        let logs = dir.path().to_path_buf();
        let redis = Redis::start(&logs, spec.fsync)?;
        let url = redis.url();
        let mut gateways = Vec::new();
        for i in 0..spec.gateways {
            let label = format!("gateway-{}", i + 1);
            gateways.push(Gateway::start(
                &label,
                &bins.gateway,
                &url,
                spec.keep_completed_secs,
                &logs,
            )?);
        }
        let mut workers = Vec::new();
        let kinds = std::iter::repeat_n(Kind::Rust, spec.rust_workers)
            .chain(std::iter::repeat_n(Kind::Node, spec.node_workers));
        for (i, kind) in kinds.enumerate() {
            let label = format!("{}-worker-{}", lang(kind), i + 1);
            workers.push(WorkerProc::start(
                &label,
                kind,
                &bins.worker,
                &url,
                spec.concurrency,
                &logs,
            )?);
        }
        Ok(Fleet {
            dir,
            redis,
            gateways,
            workers,
        })
    }

    /// Where the logs are.
    pub fn logs(&self) -> &Path {
        self.dir.path()
    }

    /// Gateway URLs carrying a token for `sub`.
    pub fn urls(&self, sub: &str) -> Result<Vec<String>, FleetError> {
        let token = gateway::token(sub)?;
        Ok(self
            .gateways
            .iter()
            .map(|g| format!("{}?token={token}", g.ws_url()))
            .collect())
    }

    /// Every process that should be running and has exited, with why.
    pub fn exited(&mut self) -> Vec<String> {
        let gws = self.gateways.iter_mut().filter_map(|g| g.proc_mut());
        let ws = self.workers.iter_mut().filter_map(|w| w.proc_mut());
        gws.chain(ws).filter_map(|p| p.exited()).collect()
    }

    /// `label=<RSS KiB>` of every running process, Redis first.
    pub fn rss(&self) -> Vec<(String, u64)> {
        let redis = self.redis.proc().into_iter();
        let gws = self.gateways.iter().filter_map(Gateway::proc);
        let ws = self.workers.iter().filter_map(WorkerProc::proc);
        redis
            .chain(gws)
            .chain(ws)
            .map(|p| (p.label().to_string(), p.rss_kb()))
            .collect()
    }
}

fn lang(kind: Kind) -> &'static str {
    match kind {
        Kind::Rust => "rust",
        Kind::Node => "node",
    }
}
