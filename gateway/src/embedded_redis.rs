//! A redis-server the gateway starts itself when `REDIS_URL` is unset
//! (one-machine setups): data under a local folder, append-only file on,
//! loopback only, stopped when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The data folder could not be created.
    #[error("cannot create {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    /// The binary could not be run.
    #[error("cannot start {0} ({1}); install redis-server or set REDIS_URL")]
    Spawn(String, std::io::Error),
    /// It did not answer PING in time.
    #[error("redis-server did not become ready on port {0}")]
    NotReady(u16),
    /// No free port.
    #[error("no free port: {0}")]
    Port(std::io::Error),
}

/// A running redis-server child.
#[derive(Debug)]
pub struct EmbeddedRedis {
    child: Child,
    port: u16,
}

impl EmbeddedRedis {
    /// Starts `bin` (usually `redis-server`) with its data in `dir`.
    pub fn start(bin: &str, dir: &Path) -> Result<Self, EmbeddedError> {
        std::fs::create_dir_all(dir).map_err(|e| EmbeddedError::Dir(dir.to_path_buf(), e))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(EmbeddedError::Port)?
            .port();
        let child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
            ])
            .args([
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| EmbeddedError::Spawn(bin.to_string(), e))?;
        let mut server = EmbeddedRedis { child, port };
        server.wait_ready()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self) -> Result<(), EmbeddedError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Err(EmbeddedError::NotReady(self.port));
            }
            let ok = redis::Client::open(self.url())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok();
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err(EmbeddedError::NotReady(self.port))
    }
}

impl Drop for EmbeddedRedis {
    fn drop(&mut self) {
        // SHUTDOWN lets it finish the append-only file; kill if it does not.
        if let Ok(mut c) = redis::Client::open(self.url()).and_then(|c| c.get_connection()) {
            let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_with_aof_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let server = EmbeddedRedis::start("redis-server", dir.path()).unwrap();
        let mut c = redis::Client::open(server.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let aof: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .query(&mut c)
            .unwrap();
        assert_eq!(aof[1], "yes");
        let url = server.url();
        drop(server);
        let gone = redis::Client::open(url).unwrap().get_connection().is_err();
        assert!(gone, "stopped on drop");
        assert!(dir.path().join("appendonlydir").exists(), "AOF data kept");
    }
}
