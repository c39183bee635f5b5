//! The gateway binary in its own process, so that a test can read the
//! gateway's resident memory (`VmRSS` in /proc) apart from the test's
//! clients and worker.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use super::{Env, SECRET, WAIT};

/// A gateway process; killed when dropped.
pub struct GatewayProcess {
    child: Child,
    pub addr: SocketAddr,
}

impl GatewayProcess {
    /// Starts the binary on `env`'s Redis with the `demo` service, plain
    /// ws on a free loopback port, the test secret, and `vars` on top;
    /// returns once it accepts connections.
    pub async fn start(env: &Env, vars: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let secret = std::str::from_utf8(SECRET).expect("the test secret is text");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
        cmd.env_clear()
            .env("REDIS_URL", env.redis.url())
            .env("JWT_SECRET", secret)
            .env("SERVICES", "demo")
            .env("PLAIN_WS", "1")
            .env("LISTEN_ADDR", addr.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("the gateway binary starts");
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the gateway never listened"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        GatewayProcess { child, addr }
    }

    pub fn url(&self, token: &str) -> String {
        format!("ws://{}/ws?token={token}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident memory, KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of process `pid`, KiB (0 when unreadable).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
