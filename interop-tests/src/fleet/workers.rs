//! The fleet's workers, both serving queue `demo`: the Rust `worker` binary
//! (its lock duration is BullMQ's 30 s; it has no flag for it) and the Node
//! worker in `node_worker.cjs` (npm `bullmq`, short locks).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::proc::Proc;
use super::FleetError;

/// Which worker implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The `worker` binary of this workspace.
    Rust,
    /// npm `bullmq` 6.7.0 running `node_worker.cjs`.
    Node,
}

/// Lock settings of the Node worker: a killed one's jobs are back in
/// `wait` within about lock + interval.
pub const NODE_LOCK_MS: u64 = 4_000;
/// How often the Node worker looks for stalled jobs.
pub const NODE_STALLED_INTERVAL_MS: u64 = 2_000;

/// One worker process.
#[derive(Debug)]
pub struct WorkerProc {
    label: String,
    kind: Kind,
    bin: PathBuf,
    redis_url: String,
    concurrency: usize,
    logs: PathBuf,
    proc: Option<Proc>,
}

impl WorkerProc {
    /// Starts a worker; returns once it says it is ready.
    pub fn start(
        label: &str,
        kind: Kind,
        rust_bin: &Path,
        redis_url: &str,
        concurrency: usize,
        logs: &Path,
    ) -> Result<WorkerProc, FleetError> {
        let mut w = WorkerProc {
            label: label.to_string(),
            kind,
            bin: rust_bin.to_path_buf(),
            redis_url: redis_url.to_string(),
            concurrency,
            logs: logs.to_path_buf(),
            proc: None,
        };
        w.spawn()?;
        Ok(w)
    }

    /// Rust or Node.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The running process, if any.
    pub fn proc(&self) -> Option<&Proc> {
        self.proc.as_ref()
    }

    /// The running process, if any (for exit checks).
    pub fn proc_mut(&mut self) -> Option<&mut Proc> {
        self.proc.as_mut()
    }

    /// `kill -9` mid-job: its jobs stay `active` until their locks expire.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    /// Starts it again (what a supervisor does).
    pub fn restart(&mut self) -> Result<(), FleetError> {
        self.kill9();
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), FleetError> {
        let (cmd, ready) = match self.kind {
            Kind::Rust => {
                let mut c = Command::new(&self.bin);
                c.args(["--redis-url", &self.redis_url])
                    .args(["--concurrency", &self.concurrency.to_string()])
                    .args(["--name", &self.label, "demo"])
                    .env("RUST_LOG", "info");
                (c, "worker ready")
            }
            Kind::Node => {
                let script = super::fleet_dir().join("node_worker.cjs");
                let mut c = Command::new(crate::clients::node());
                c.arg(script)
                    .arg(&self.redis_url)
                    .arg(self.concurrency.to_string())
                    .arg(NODE_LOCK_MS.to_string())
                    .arg(NODE_STALLED_INTERVAL_MS.to_string())
                    .env("NODE_PATH", crate::clients::node_modules());
                (c, "ready")
            }
        };
        let log = self.logs.join(format!("{}.log", self.label));
        let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) as usize;
        let mut proc = Proc::spawn(&self.label, cmd, &self.logs)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read(&log).unwrap_or_default();
            let fresh = String::from_utf8_lossy(text.get(offset..).unwrap_or_default());
            if fresh.lines().any(|l| l.contains(ready)) {
                break;
            }
            if let Some(why) = proc.exited() {
                return Err(FleetError::Process(why));
            }
            if Instant::now() > deadline {
                return Err(FleetError::Process(format!(
                    "{} not ready after 60 s: {}",
                    self.label,
                    proc.log_tail(5)
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.proc = Some(proc);
        Ok(())
    }
}
