//! The processes under test: starting our binaries or the PRD stack, waiting
//! for their port, stopping them, and what /proc says about them.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::load::Tls;
use crate::SECRET;

/// A child process; stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Proc {
    pub(crate) label: &'static str,
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
}

impl Proc {
    fn spawn(
        label: &'static str,
        mut cmd: Command,
        logs: &Path,
        tag: &str,
    ) -> Result<Proc, String> {
        let log = logs.join(format!("{tag}-{label}.log"));
        let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{label}: {e} ({cmd:?})"))?;
        Ok(Proc { label, child, log })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (VmHWM, VmRSS) in KiB, from /proc/<pid>/status.
    pub(crate) fn memory_kb(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    pub(crate) fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&self.pid().to_string())
    }

    pub(crate) fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}): {}",
                self.label,
                std::fs::read_to_string(&self.log)
                    .unwrap_or_default()
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" | ")
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        wait_or_kill(&mut self.child, Duration::from_secs(5));
    }
}

/// Waits up to `grace` for a child asked to stop, then kills it.
pub(crate) fn wait_or_kill(child: &mut Child, grace: Duration) {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[derive(Debug)]
pub(crate) struct OurBinaries {
    pub(crate) gateway: PathBuf,
    pub(crate) worker: PathBuf,
    /// Runtime threads of each (`--threads`; 0: their default, one per
    /// core).
    pub(crate) threads: usize,
}

/// `gateway` and `worker` next to this example (`<target>/release/`), or
/// from `GATEWAY_BIN` / `WORKER_BIN`.
pub(crate) fn our_binaries() -> Result<OurBinaries, String> {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(|d| {
            if d.ends_with("examples") {
                d.parent()
            } else {
                Some(d)
            }
        })
        .unwrap()
        .to_path_buf();
    let pick = |var: &str, name: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join(name))
    };
    let b = OurBinaries {
        gateway: pick("GATEWAY_BIN", "gateway"),
        worker: pick("WORKER_BIN", "worker"),
        threads: 0,
    };
    for p in [&b.gateway, &b.worker] {
        if !p.exists() {
            return Err(format!(
                "{} is missing: run `cargo build --release -p gateway -p worker` (same CARGO_TARGET_DIR), or set GATEWAY_BIN / WORKER_BIN, or pass --peers prd --idle 0",
                p.display()
            ));
        }
    }
    Ok(b)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn start_ours(
    bins: &OurBinaries,
    redis_url: &str,
    port: u16,
    concurrency: usize,
    extra: &[&str],
    with_worker: bool,
    tls: Option<&Tls>,
    logs: &Path,
) -> Result<Vec<Proc>, String> {
    let mut gw = Command::new(&bins.gateway);
    match tls {
        Some(t) => gw
            .arg("--tls-cert-file")
            .arg(&t.cert_file)
            .arg("--tls-key-file")
            .arg(&t.key_file),
        None => gw.arg("--plain-ws"),
    };
    gw.args([
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--redis-url",
        redis_url,
        "--jwt-secret",
        SECRET,
        "--services",
        "demo",
    ])
    .args(extra)
    .args(["--threads", &bins.threads.to_string()])
    .env("RUST_LOG", "warn");
    let mut procs = vec![Proc::spawn("gateway", gw, logs, &format!("ours-{port}"))?];
    if with_worker {
        let mut w = Command::new(&bins.worker);
        w.args([
            "--redis-url",
            redis_url,
            "--concurrency",
            &concurrency.to_string(),
            "--threads",
            &bins.threads.to_string(),
            "demo",
        ])
        .env("RUST_LOG", "warn");
        procs.push(Proc::spawn("worker", w, logs, &format!("ours-{port}"))?);
    }
    wait_port(port, &mut procs)?;
    Ok(procs)
}

pub(crate) struct PrdStack {
    pub(crate) dir: PathBuf,
    pub(crate) runtime: PathBuf,
    pub(crate) runtime_label: String,
}

/// Installs the pinned packages (once per lock file) and picks the runtime:
/// Bun from the package, or Node when `PRD_RUNTIME=node` or Bun cannot run.
pub(crate) fn prd_setup() -> PrdStack {
    let dir = interop_tests::clients::setup_prd_stack();
    let bun = dir.join("node_modules/.bin/bun");
    let forced_node = std::env::var("PRD_RUNTIME").as_deref() == Ok("node");
    let bun_version = (!forced_node)
        .then(|| Command::new(&bun).arg("--version").output().ok())
        .flatten()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match bun_version {
        Some(v) => PrdStack {
            dir,
            runtime: bun,
            runtime_label: format!("Bun {v}"),
        },
        None => {
            let v = Command::new(interop_tests::clients::node())
                .arg("--version")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            if !forced_node {
                eprintln!("prd-stack: Bun does not run here; falling back to Node {v}");
            }
            let why = if forced_node {
                "PRD_RUNTIME=node"
            } else {
                "Bun fallback"
            };
            PrdStack {
                dir,
                runtime: interop_tests::clients::node(),
                runtime_label: format!("Node {v}, {why}"),
            }
        }
    }
}

pub(crate) fn start_prd(
    prd: &PrdStack,
    redis_url: &str,
    port: u16,
    concurrency: usize,
    with_worker: bool,
    tls: Option<&Tls>,
    logs: &Path,
) -> Result<Vec<Proc>, String> {
    let mut server = Command::new(&prd.runtime);
    if let Some(t) = tls {
        server
            .env("TLS_CERT_FILE", &t.cert_file)
            .env("TLS_KEY_FILE", &t.key_file);
    }
    server
        .arg("server.mjs")
        .current_dir(&prd.dir)
        .env("REDIS_URL", redis_url)
        .env("JWT_SECRET", SECRET)
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env("SERVICES", "demo");
    let mut procs = vec![Proc::spawn("server", server, logs, &format!("prd-{port}"))?];
    if with_worker {
        let mut w = Command::new(&prd.runtime);
        w.arg("worker.mjs")
            .current_dir(&prd.dir)
            .env("REDIS_URL", redis_url)
            .env("CONCURRENCY", concurrency.to_string());
        procs.push(Proc::spawn("worker", w, logs, &format!("prd-{port}"))?);
    }
    wait_port(port, &mut procs)?;
    Ok(procs)
}

pub(crate) fn wait_port(port: u16, procs: &mut [Proc]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for p in procs.iter_mut() {
            p.check_alive()?;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("nothing listens on port {port} after 30 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// user + system CPU seconds of a process (`self` or a pid), from
/// /proc/<pid>/stat (ticks of 1/100 s).
pub(crate) fn cpu_seconds_of(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Raises the soft RLIMIT_NOFILE to the hard one (children inherit it).
pub(crate) fn raise_nofile() -> (u64, u64) {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((0, 0))
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
