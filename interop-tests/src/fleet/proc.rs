//! One child process of the fleet: started with its output in a log file,
//! signalled by pid (`kill -9`, `SIGSTOP`, `SIGCONT`), asked how much memory
//! it holds, and killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::FleetError;

/// A running child process and where its output goes.
#[derive(Debug)]
pub struct Proc {
    label: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdin closed and stdout/stderr appended to
    /// `<logs>/<label>.log` (a restarted process appends to the same file).
    pub fn spawn(label: &str, mut cmd: Command, logs: &Path) -> Result<Proc, FleetError> {
        let log = logs.join(format!("{label}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| FleetError::io(format!("log file {}", log.display()), e))?;
        let err = file
            .try_clone()
            .map_err(|e| FleetError::io("log file handle", e))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| FleetError::io(format!("start {label} ({cmd:?})"), e))?;
        Ok(Proc {
            label: label.to_string(),
            child,
            log,
        })
    }

    /// What the fleet calls this process (`gateway-1`, `redis`, ...).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`, `TERM`) by pid.
    pub fn signal(&self, signal: &str) -> Result<(), FleetError> {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .map_err(|e| FleetError::io("run kill", e))?;
        if status.success() {
            Ok(())
        } else {
            Err(FleetError::Process(format!(
                "kill -{signal} {} ({}) failed",
                self.pid(),
                self.label
            )))
        }
    }

    /// `kill -9`, then reaps the process.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `None` while running; how it ended otherwise, with its log's tail.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(format!(
                "{} exited ({status}); log tail: {}",
                self.label,
                self.log_tail(5)
            )),
            Err(e) => Some(format!("{}: {e}", self.label)),
        }
    }

    /// The last `n` lines of the log, joined with ` | `.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut lines: Vec<&str> = text.lines().rev().take(n).collect();
        lines.reverse();
        lines.join(" | ")
    }

    /// Resident memory in KiB (`VmRSS` of `/proc/<pid>/status`), 0 if gone.
    pub fn rss_kb(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // a frozen process ignores TERM; the fleet owns it, so kill it outright
        self.kill9();
    }
}
