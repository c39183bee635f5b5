//! The fleet's `redis-server`: its own loopback port and data directory,
//! AOF with a chosen fsync policy, and the faults a test inflicts on it
//! (`kill -9`, restart on the same port and data, `SIGSTOP`/`SIGCONT`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::proc::Proc;
use super::{free_port, FleetError};

/// When the append-only file reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// `appendfsync always`: a write is on disk before Redis replies.
    Always,
    /// `appendfsync everysec`: up to about a second of writes may be lost by a crash.
    EverySec,
}

impl Fsync {
    fn as_arg(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
        }
    }
}

/// A redis-server owned by the fleet; killed when dropped.
#[derive(Debug)]
pub struct Redis {
    proc: Option<Proc>,
    port: u16,
    fsync: Fsync,
    dir: PathBuf,
    logs: PathBuf,
}

impl Redis {
    /// Starts a server on a free port with its data in `<dir>/redis`.
    pub fn start(dir: &Path, fsync: Fsync) -> Result<Redis, FleetError> {
        let data = dir.join("redis");
        std::fs::create_dir_all(&data)
            .map_err(|e| FleetError::io(format!("create {}", data.display()), e))?;
        let mut redis = Redis {
            proc: None,
            port: free_port()?,
            fsync,
            dir: data,
            logs: dir.to_path_buf(),
        };
        redis.spawn()?;
        Ok(redis)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The running process, if any.
    pub fn proc(&self) -> Option<&Proc> {
        self.proc.as_ref()
    }

    /// `kill -9`: whatever the AOF policy did not write yet is gone.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    /// Starts it again on the same port and data (after [`Redis::kill9`]).
    pub fn restart(&mut self) -> Result<(), FleetError> {
        self.kill9();
        self.spawn()
    }

    /// `SIGSTOP`: the server holds its sockets open and answers nothing.
    pub fn freeze(&self) -> Result<(), FleetError> {
        self.running()?.signal("STOP")
    }

    /// `SIGCONT` after [`Redis::freeze`].
    pub fn thaw(&self) -> Result<(), FleetError> {
        self.running()?.signal("CONT")
    }

    fn running(&self) -> Result<&Proc, FleetError> {
        self.proc
            .as_ref()
            .ok_or_else(|| FleetError::Process("redis is not running".into()))
    }

    fn spawn(&mut self) -> Result<(), FleetError> {
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let mut cmd = Command::new(&bin);
        cmd.args(["--port", &self.port.to_string()])
            .args([
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "no",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", self.fsync.as_arg()])
            .arg("--dir")
            .arg(&self.dir);
        let mut proc = Proc::spawn("redis", cmd, &self.logs)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(why) = proc.exited() {
                return Err(FleetError::Process(why));
            }
            if ping(self.port) {
                break;
            }
            if Instant::now() > deadline {
                return Err(FleetError::Process(format!(
                    "redis on port {} not ready after 30 s",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.proc = Some(proc);
        Ok(())
    }
}

/// PING answered with PONG (AOF loaded).
fn ping(port: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else {
        return false;
    };
    let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
        return false;
    };
    redis::cmd("PING")
        .query::<String>(&mut con)
        .is_ok_and(|s| s == "PONG")
}
