//! The fleet's gateways: the `gateway` binary on its own loopback port,
//! plain WebSocket, an HS256 dev secret, no rate limits; killed and started
//! again on the same port.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

use super::proc::Proc;
use super::{free_port, FleetError};

/// The HS256 secret the fleet's gateways verify tokens with.
pub const SECRET: &str = "fleet-dev-secret-not-for-production";

/// A token for `sub`, valid for a day.
pub fn token(sub: &str) -> Result<String, FleetError> {
    let exp = jsonwebtoken::get_current_timestamp() + 86_400;
    encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": sub, "exp": exp}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .map_err(|e| FleetError::Process(format!("cannot sign a token: {e}")))
}

/// One gateway process.
#[derive(Debug)]
pub struct Gateway {
    label: String,
    bin: PathBuf,
    redis_url: String,
    port: u16,
    keep_completed_secs: u64,
    logs: PathBuf,
    proc: Option<Proc>,
}

impl Gateway {
    /// Starts `bin` serving queue `demo` on a free port; returns once it listens.
    pub fn start(
        label: &str,
        bin: &Path,
        redis_url: &str,
        keep_completed_secs: u64,
        logs: &Path,
    ) -> Result<Gateway, FleetError> {
        let mut gw = Gateway {
            label: label.to_string(),
            bin: bin.to_path_buf(),
            redis_url: redis_url.to_string(),
            port: free_port()?,
            keep_completed_secs,
            logs: logs.to_path_buf(),
            proc: None,
        };
        gw.spawn()?;
        Ok(gw)
    }

    /// `ws://127.0.0.1:<port>/ws`, without a token.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// The running process, if any.
    pub fn proc(&self) -> Option<&Proc> {
        self.proc.as_ref()
    }

    /// The running process, if any (for exit checks).
    pub fn proc_mut(&mut self) -> Option<&mut Proc> {
        self.proc.as_mut()
    }

    /// `kill -9`: its sockets drop without a close frame.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) -> Result<(), FleetError> {
        self.kill9();
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), FleetError> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--redis-url", &self.redis_url])
            .args(["--jwt-secret", SECRET])
            .args(["--plain-ws", "true", "--services", "demo"])
            .args(["--rate-limit-user", "0", "--rate-limit-ip", "0"])
            .args([
                "--keep-completed-secs",
                &self.keep_completed_secs.to_string(),
            ])
            .env("RUST_LOG", "warn");
        let mut proc = Proc::spawn(&self.label, cmd, &self.logs)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(why) = proc.exited() {
                return Err(FleetError::Process(why));
            }
            if Instant::now() > deadline {
                return Err(FleetError::Process(format!(
                    "{} does not listen on {} after 60 s",
                    self.label, self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.proc = Some(proc);
        Ok(())
    }
}
