//! A throwaway `redis-server` for tests: a free loopback port, a temporary
//! directory, killed on drop, restartable on the same port and data (for
//! fault tests). Set `REDIS_SERVER_BIN` to use another binary.
//! [`RedisCluster`] and [`RedisSentinelSet`] are the same for a 6-node
//! cluster and a Sentinel set (`REDIS_CLI_BIN` names `redis-cli`).

mod cluster;
mod node;
mod sentinel;

pub use cluster::RedisCluster;
pub use sentinel::RedisSentinelSet;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server owned by a test.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// Append-only file with fsync on every write, so a restart after
    /// `kill` keeps every acknowledged write.
    durable: bool,
    /// Serve TLS only (certificates made with the `openssl` CLI).
    tls: bool,
}

impl RedisServer {
    /// Starts a server on a free port; panics with install advice when
    /// `redis-server` is missing (tests only).
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// Starts a server that keeps every write across [`RedisServer::restart`]
    /// (AOF, fsync always): for fault tests.
    pub fn start_durable() -> Self {
        Self::launch(true)
    }

    /// Starts a TLS-only server with a throwaway CA; connect with
    /// [`RedisServer::tls_url`] and trust [`RedisServer::ca_pem`].
    pub fn start_tls() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for redis");
        make_certs(dir.path());
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir,
            durable: false,
            tls: true,
        };
        server.spawn();
        server
    }

    /// `rediss://localhost:<port>` (TLS servers).
    pub fn tls_url(&self) -> String {
        format!("rediss://localhost:{}", self.port)
    }

    /// The CA certificate (PEM) of a TLS server.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("ca.crt")).expect("ca.crt of a TLS server")
    }

    fn launch(durable: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for redis");
        let port = free_port();
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            durable,
            tls: false,
        };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL), keeping its data directory.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (data kept when durable).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_string());
        let aof: &[&str] = if self.durable {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let port = self.port.to_string();
        let d = |f: &str| self.dir.path().join(f).display().to_string();
        let listen: Vec<String> = if self.tls {
            [
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-cert-file",
                &d("server.crt"),
                "--tls-key-file",
                &d("server.key"),
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([
                "--tls-ca-cert-file".to_string(),
                d("ca.crt"),
                "--tls-auth-clients".into(),
                "no".into(),
            ])
            .collect()
        } else {
            vec!["--port".into(), port]
        };
        let child = Command::new(&bin)
            .args(&listen)
            .args(["--bind", "127.0.0.1", "--save", "", "--protected-mode", "no"])
            .args(aof)
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} ({e}); install it (apt-get install redis-server) or set REDIS_SERVER_BIN"));
        self.child = Some(child);
        if self.tls {
            wait_listening(self.port, self.dir.path());
        } else {
            wait_ready(self.port, self.dir.path());
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// A CA and a server certificate for `localhost` / 127.0.0.1.
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "openssl {args:?} failed; install openssl for TLS tests");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("write ext.cnf");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.crt",
    ]);
}

fn wait_listening(port: u16, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "TLS redis-server on port {port} (dir {}) did not start",
        dir.display()
    );
}

fn wait_ready(port: u16, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) {
            if let Ok(mut con) = client.get_connection() {
                if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "redis-server on port {port} (dir {}) did not start",
        dir.display()
    );
}
