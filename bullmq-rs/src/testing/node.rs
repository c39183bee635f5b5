//! One `redis-server` process of a cluster or a Sentinel set: its port, its
//! directory (kept across kills, so a restart finds its `nodes.conf` or
//! rewritten sentinel config), and the arguments it is started with.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// A server process owned by a fixture; killed on drop.
#[derive(Debug)]
pub(crate) struct NodeProcess {
    pub(crate) port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl NodeProcess {
    /// A node on a free port in `dir/<port>`, started with `args` (`{port}`
    /// and `{dir}` in them are replaced).
    pub(crate) fn start(root: &Path, args: &[&str]) -> Self {
        Self::start_with(root, args, |_, _| {})
    }

    /// Like [`NodeProcess::start`], calling `prepare(dir, port)` first (to
    /// write a config file the arguments name).
    pub(crate) fn start_with(root: &Path, args: &[&str], prepare: impl FnOnce(&Path, u16)) -> Self {
        let port = free_port();
        let dir = root.join(port.to_string());
        std::fs::create_dir_all(&dir).expect("node dir");
        prepare(&dir, port);
        let args = args
            .iter()
            .map(|a| {
                a.replace("{port}", &port.to_string())
                    .replace("{dir}", &dir.display().to_string())
            })
            .collect();
        let mut node = NodeProcess {
            port,
            dir,
            args,
            child: None,
        };
        node.spawn();
        node
    }

    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub(crate) fn spawn(&mut self) {
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_string());
        let child = Command::new(&bin)
            .args(&self.args)
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} ({e}); install it (apt-get install redis-server) or set REDIS_SERVER_BIN"));
        self.child = Some(child);
        wait_for(
            20,
            &format!("redis on port {} to answer", self.port),
            || ping(self.port),
        );
    }

    /// SIGKILL; the directory stays.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A synchronous connection to a loopback port.
pub(crate) fn connect(port: u16) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    client
        .get_connection_with_timeout(Duration::from_secs(2))
        .ok()
}

fn ping(port: u16) -> bool {
    connect(port)
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c).ok())
        .is_some()
}

/// Runs `cmd` on the server at `port`; `None` when it cannot.
pub(crate) fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Option<T> {
    let mut con = connect(port)?;
    cmd.query(&mut con).ok()
}

/// `field:value` of an INFO-like reply.
pub(crate) fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// Polls `check` every 50 ms until it holds; panics after `secs`.
pub(crate) fn wait_for(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until every replica in `replicas` holds all its master's writes.
///
/// A replica can report `master_link_status:up` yet receive no writes for up
/// to a second after a diskless sync (its master streams to it only after the
/// replica's next REPLCONF ACK). A master killed in that window leaves a
/// promoted replica at offset 0 and every write since is gone: the fixture's
/// fault, not the code under test's. So: write on every master (FLUSHALL on a
/// fresh server), then wait until each replica's offset reaches its master's.
pub(crate) fn wait_replicated(masters: &[u16], replicas: &[u16]) {
    for &port in masters {
        let _: Option<String> = query(port, &redis::cmd("FLUSHALL"));
    }
    let replication = |port: u16| query::<String>(port, redis::cmd("INFO").arg("replication"));
    let number = |info: &str, field: &str| info_field(info, field)?.parse::<i64>().ok();
    wait_for(30, "every replica to receive its master's writes", || {
        replicas.iter().all(|&replica| {
            let Some(info) = replication(replica) else {
                return false;
            };
            let own = number(&info, "slave_repl_offset");
            let theirs = info_field(&info, "master_port")
                .and_then(|p| p.parse::<u16>().ok())
                .and_then(replication)
                .and_then(|m| number(&m, "master_repl_offset"));
            matches!((own, theirs), (Some(a), Some(b)) if b > 0 && a >= b)
        })
    });
}
