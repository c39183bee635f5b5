//! The client SDKs (`clients/js`, `clients/python`) against real gateways:
//! each language's suite script runs its scenarios and prints `ok <name>`;
//! these tests start the gateway, the worker and the script, and check that
//! every scenario passed.
//!
//! - `js`, `python`: echo, progress, retries, failures, cancel, batches,
//!   500 concurrent calls on one client, the PRD's examples rewritten.
//! - `browser`: the JS SDK in headless Chromium, from a page served over
//!   HTTPS with the dev certificate, calling the gateway over WSS.
//! - `bun`: the JS suite and failover scripts in Bun.
//! - `behaviour`: token refresh, heartbeat, the bounded queue, the reconnect
//!   after a 4429 close (abuse cooldown), cancel before acceptance.
//! - `failover`: two gateway processes on one Redis; the one a client is on
//!   is killed (SIGKILL) with calls in flight, which end via the other.

mod behaviour;
mod browser;
mod bun;
mod examples;
mod failover;
mod js;
mod packaging;
mod python;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use interop_tests::clients;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::support::{Env, SECRET, WAIT};

/// How long one suite script may run.
pub const SUITE_WAIT: Duration = Duration::from_secs(180);

/// The repository's root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("gateway/ has a parent")
}

/// `clients/js`, installed and built once per process (`setup.sh clients-js`).
pub fn clients_js() -> PathBuf {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| setup_part("clients-js"));
    repo_root().join("clients/js")
}

/// `clients/python/src`, for `PYTHONPATH`; the venv of [`clients::python`]
/// holds `websockets` (interop-tests/python/requirements.txt).
pub fn clients_python_src() -> PathBuf {
    clients::setup();
    repo_root().join("clients/python/src")
}

fn setup_part(part: &str) {
    let script = clients::interop_dir().join("setup.sh");
    let status = std::process::Command::new("bash")
        .arg(&script)
        .arg(part)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(status.success(), "setup.sh {part} failed");
}

/// A running script: its stdout lines arrive on a channel, its stderr is kept.
pub struct Script {
    pub child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: mpsc::UnboundedReceiver<String>,
    pub seen: Vec<String>,
}

fn forward(stream: impl AsyncRead + Unpin + Send + 'static) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Script {
    pub fn spawn(mut cmd: Command) -> Script {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the script starts");
        let lines = forward(child.stdout.take().expect("piped stdout"));
        let stderr = forward(child.stderr.take().expect("piped stderr"));
        Script {
            child,
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    fn stderr_text(&mut self) -> String {
        let mut text = String::new();
        while let Ok(line) = self.stderr.try_recv() {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    /// Waits for a line starting with `prefix`; returns it.
    pub async fn line_starting(&mut self, prefix: &str) -> String {
        let found = tokio::time::timeout(SUITE_WAIT, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if line.starts_with(prefix) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => {
                let stderr = self.stderr_text();
                panic!(
                    "no line `{prefix}…`; stdout: {:?}\nstderr:\n{stderr}",
                    self.seen
                )
            }
        }
    }

    /// Waits for the script to exit; asserts success and returns every stdout line.
    pub async fn finish(mut self) -> Vec<String> {
        let status = tokio::time::timeout(SUITE_WAIT, self.child.wait()).await;
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        // the forwarders may still hold the last lines
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_millis(200), self.lines.recv()).await
        {
            self.seen.push(line);
        }
        let ok = matches!(status, Ok(Ok(s)) if s.success());
        let stderr = self.stderr_text();
        assert!(
            ok,
            "script failed ({status:?}); stdout: {:?}\nstderr:\n{stderr}",
            self.seen
        );
        self.seen
    }
}

/// Asserts that `lines` holds `ok <name>` for every name.
pub fn assert_all_ok(lines: &[String], names: &[&str]) {
    for name in names {
        let want = format!("ok {name}");
        assert!(
            lines.iter().any(|l| l == &want),
            "scenario {name} did not pass; output: {lines:?}"
        );
    }
}

/// A gateway in its own process (`target/.../gateway`), so a test can kill -9 it.
pub struct GatewayProcess {
    pub child: Child,
    pub port: u16,
}

impl GatewayProcess {
    /// Serves `demo` over plain ws on a free loopback port, on `env`'s Redis.
    pub async fn start(env: &Env) -> GatewayProcess {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--plain-ws")
            .arg("true")
            .arg("--services")
            .arg("demo")
            .arg("--redis-url")
            .arg(env.redis.url())
            .arg("--jwt-secret")
            .arg(String::from_utf8_lossy(SECRET).to_string())
            .env_remove("GATEWAY_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn().expect("the gateway binary starts");
        let ready = tokio::time::timeout(WAIT, async {
            loop {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(ready.is_ok(), "the gateway on port {port} never listened");
        GatewayProcess { child, port }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// SIGKILL: no close frames, no shutdown; the sockets just end.
    pub async fn kill9(&mut self) {
        self.child.kill().await.expect("the gateway is killed");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
