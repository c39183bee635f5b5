//! Side-by-side benchmark of the WebSocket JSON-RPC gateway: our `gateway`
//! and `worker` binaries against the PRD's own stack (Bun, Fastify,
//! @fastify/websocket, BullMQ and ioredis pub/sub, in
//! `interop-tests/prd-stack/`), on one throwaway redis-server, driven by the
//! same load client.
//!
//! ```text
//! cargo build --release -p gateway -p worker
//! cargo run --release -p interop-tests --example gateway_bench -- [options]
//! ```
//!
//! (With `CARGO_TARGET_DIR` set, use the same value for both commands: the
//! binaries are looked up next to this example, or in `GATEWAY_BIN` and
//! `WORKER_BIN`.) The PRD stack's npm packages (pinned in
//! `prd-stack/package-lock.json`, Bun included) are installed with `npm ci`
//! on first use; `PRD_RUNTIME=node` runs it on Node instead of Bun.
//!
//! For each peer it starts the front end (`gateway --plain-ws`, or
//! `bun server.mjs`) and a worker serving queue `demo` (`worker demo`, or
//! `bun worker.mjs`) with the same concurrency, warms up, then runs
//! - **1x1**: 1 socket with 1 call in flight, `--calls-1` calls;
//! - **50x4**: 50 sockets with 4 calls in flight each, `--calls-50` calls,
//!
//! each call `demo.echo` with a small payload, checked to come back. It
//! reports calls/s, round-trip p50/p99/p99.9/max and the count over 1 s, the
//! peak (VmHWM) and current (VmRSS) memory of every process, CPU time per
//! call of the front end, the worker and the load client, redis-server CPU
//! time and commands per call, and ours/PRD ratios against the targets of
//! issue 3 (3x the calls/s, a third of the p99, < 16 KiB per idle socket).
//! Our gateway runs with its rate limits off for the load (the PRD stack has
//! none). Then **idle**: a fresh gateway holds `--idle` authenticated idle
//! connections (each with its own user's token, default limits) opened by
//! helper processes of this program, and the RSS increase per connection is
//! reported (`--idle-peers ours,prd` measures the PRD server the same way).
//!
//! Options (defaults in brackets):
//! `--calls-1 N` [5000], `--calls-50 N` [20000], `--idle N` [20000; 0 skips],
//! `--concurrency N` worker concurrency for both peers [50], `--payload N`
//! bytes of text in each call's params [64], `--warmup N` calls [2000],
//! `--peers ours,prd` [both, in this order], `--idle-peers ours[,prd]`
//! [ours], `--client-threads N` load client threads [1], `--timeout-secs N`
//! per scenario [300].
//!
//! Open files: 20,000 idle connections need that many descriptors in the
//! gateway (the load side is spread over helper processes). The program
//! raises its soft `RLIMIT_NOFILE` to the hard limit, which the children
//! inherit; raise the hard limit first (`ulimit -Hn 30000`, which needs
//! CAP_SYS_RESOURCE, e.g. `docker run --ulimit nofile=30000:30000`) when it
//! is below `--idle` + 100, else the idle count is capped to fit and the
//! report says so.
//!
//! Everything runs on 127.0.0.1 over plain `ws://` (both peers; the PRD and
//! our defaults are WSS). Counts and time are bounded by the options.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use interop_tests::RedisServer;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "gateway-bench-secret";
/// Descriptors kept free in the gateway beside the idle sockets (listener,
/// Redis connections, epoll, stdio, ...).
const FD_HEADROOM: u64 = 100;
/// Idle sockets per helper process.
const PER_HOLDER: usize = 9_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Ours,
    Prd,
}

impl Peer {
    fn parse(s: &str) -> Peer {
        match s {
            "ours" => Peer::Ours,
            "prd" => Peer::Prd,
            other => panic!("unknown peer {other:?} (ours, prd)"),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Peer::Ours => "ours",
            Peer::Prd => "prd",
        }
    }
    /// Process labels: front end, worker.
    fn labels(self) -> [&'static str; 2] {
        match self {
            Peer::Ours => ["gateway", "worker"],
            Peer::Prd => ["server", "worker"],
        }
    }
}

#[derive(Debug, Clone)]
struct Args {
    calls_1: usize,
    calls_50: usize,
    idle: usize,
    concurrency: usize,
    payload: usize,
    warmup: usize,
    peers: Vec<Peer>,
    idle_peers: Vec<Peer>,
    client_threads: usize,
    timeout: Duration,
}

fn parse_args(args: &[String]) -> Args {
    let mut a = Args {
        calls_1: 5_000,
        calls_50: 20_000,
        idle: 20_000,
        concurrency: 50,
        payload: 64,
        warmup: 2_000,
        peers: vec![Peer::Ours, Peer::Prd],
        idle_peers: vec![Peer::Ours],
        client_threads: 1,
        timeout: Duration::from_secs(300),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value")).clone();
        let num = |v: String| -> usize { v.parse().unwrap_or_else(|_| panic!("{flag}: not a number: {v}")) };
        let peers = |v: String| -> Vec<Peer> { v.split(',').filter(|s| !s.is_empty()).map(Peer::parse).collect() };
        match flag.as_str() {
            "--calls-1" => a.calls_1 = num(value()),
            "--calls-50" => a.calls_50 = num(value()),
            "--idle" => a.idle = num(value()),
            "--concurrency" => a.concurrency = num(value()),
            "--payload" => a.payload = num(value()),
            "--warmup" => a.warmup = num(value()),
            "--peers" => a.peers = peers(value()),
            "--idle-peers" => a.idle_peers = peers(value()),
            "--client-threads" => a.client_threads = num(value()).max(1),
            "--timeout-secs" => a.timeout = Duration::from_secs(num(value()) as u64),
            "-h" | "--help" => {
                println!("see the header of interop-tests/examples/gateway_bench.rs for the options");
                std::process::exit(0);
            }
            other => panic!("unknown option {other:?}; see the header of examples/gateway_bench.rs"),
        }
    }
    a
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap()
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--hold-idle") {
        hold_idle(&argv[1..]);
        return;
    }
    let args = parse_args(&argv);
    let (nofile_soft, nofile_hard) = raise_nofile();

    let ours_bins = our_binaries();
    let prd = if args.peers.contains(&Peer::Prd) || args.idle_peers.contains(&Peer::Prd) {
        Some(prd_setup())
    } else {
        None
    };
    let needs_ours = args.peers.contains(&Peer::Ours) || (args.idle > 0 && args.idle_peers.contains(&Peer::Ours));
    if let (true, Err(e)) = (needs_ours, &ours_bins) {
        eprintln!("{e}");
        std::process::exit(2);
    }

    let redis = RedisServer::start();
    let logs = tempfile::Builder::new().prefix("gateway-bench-").tempdir().unwrap().keep();
    println!("gateway benchmark: ours (gateway + worker) vs the PRD stack ({}), one redis-server, plain ws:// on 127.0.0.1", prd.as_ref().map(|p| p.runtime_label.as_str()).unwrap_or("not run"));
    println!(
        "calls: {} (1x1), {} (50x4), warm-up {}; payload {} B; worker concurrency {}; client threads {}; cores {}; loadavg {}; RLIMIT_NOFILE {}/{}; logs in {}\n",
        args.calls_1,
        args.calls_50,
        args.warmup,
        args.payload,
        args.concurrency,
        args.client_threads,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        loadavg(),
        nofile_soft,
        nofile_hard,
        logs.display()
    );

    let rt = runtime(args.client_threads);
    let mut results: Vec<PeerResult> = Vec::new();
    for &peer in &args.peers {
        flushall(&redis.url());
        let port = free_port();
        let procs = match peer {
            // The PRD stack has no rate limits; ours are turned off for the load.
            Peer::Ours => start_ours(
                ours_bins.as_ref().unwrap(),
                &redis.url(),
                port,
                args.concurrency,
                &["--rate-limit-user", "0", "--rate-limit-ip", "0"],
                true,
                &logs,
            ),
            Peer::Prd => start_prd(prd.as_ref().unwrap(), &redis.url(), port, args.concurrency, true, &logs),
        };
        let procs = match procs {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{}: could not start: {e}", peer.name());
                continue;
            }
        };
        let base = format!("ws://127.0.0.1:{port}/ws");
        if let Err(e) = rt.block_on(ready_call(&base)) {
            eprintln!("{}: not ready: {e}; logs in {}", peer.name(), logs.display());
            continue;
        }
        eprintln!("{}: warming up ({} calls)", peer.name(), args.warmup);
        if let Err(e) = rt.block_on(run_load(&base, 50.min(args.warmup.max(1)), 4, args.warmup, args.payload, args.timeout)) {
            eprintln!("{}: warm-up failed: {e}", peer.name());
            continue;
        }
        let mut r = PeerResult { peer, scenarios: Vec::new() };
        for (label, sockets, in_flight, calls) in [("1x1", 1, 1, args.calls_1), ("50x4", 50, 4, args.calls_50)] {
            std::thread::sleep(Duration::from_millis(500));
            let cpu_before: Vec<f64> = procs.iter().map(|p| p.cpu_seconds()).collect();
            let client_before = cpu_seconds_of("self");
            let redis_before = redis_stats(&redis.url());
            let commands_before = command_counts(&redis.url());
            eprintln!("{}: {label}: {calls} calls", peer.name());
            let load = rt.block_on(run_load(&base, sockets, in_flight, calls, args.payload, args.timeout));
            let mem: Vec<(u64, u64)> = procs.iter().map(|p| p.memory_kb()).collect();
            let mut cpu: Vec<f64> = procs.iter().zip(&cpu_before).map(|(p, b)| p.cpu_seconds() - b).collect();
            cpu.push(cpu_seconds_of("self") - client_before);
            let redis_after = redis_stats(&redis.url());
            if std::env::var_os("BENCH_COMMANDS").is_some() {
                print_command_mix(peer.name(), label, calls, &commands_before, &command_counts(&redis.url()));
            }
            let redis = (redis_after.0 - redis_before.0, redis_after.1 - redis_before.1);
            match load {
                Ok(load) => r.scenarios.push(Scenario { label, load, mem, cpu, redis, loadavg: loadavg() }),
                Err(e) => eprintln!("{}: {label} failed: {e}; logs in {}", peer.name(), logs.display()),
            }
        }
        drop(procs);
        results.push(r);
    }
    let mut idle_results = Vec::new();
    if args.idle > 0 {
        let cap = (nofile_hard.saturating_sub(FD_HEADROOM)) as usize;
        let count = args.idle.min(cap);
        if count < args.idle {
            println!("NOTE: RLIMIT_NOFILE hard limit is {nofile_hard}: idle connections capped at {count} instead of {} (raising it needs CAP_SYS_RESOURCE: `ulimit -Hn`, or `docker run --ulimit nofile=30000:30000`)\n", args.idle);
        }
        for &peer in &args.idle_peers {
            flushall(&redis.url());
            match idle_test(peer, ours_bins.as_ref().ok(), prd.as_ref(), &redis.url(), count, &logs) {
                Ok(r) => idle_results.push(r),
                Err(e) => eprintln!("{}: idle test failed: {e}; logs in {}", peer.name(), logs.display()),
            }
        }
    }
    report(&args, &results, &idle_results);
}

// ---------------------------------------------------------------- processes

/// A child process; stopped (SIGTERM, then SIGKILL) when dropped.
struct Proc {
    label: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(label: &'static str, mut cmd: Command, logs: &Path, tag: &str) -> Result<Proc, String> {
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

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (VmHWM, VmRSS) in KiB, from /proc/<pid>/status.
    fn memory_kb(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&self.pid().to_string())
    }

    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}): {}",
                self.label,
                std::fs::read_to_string(&self.log).unwrap_or_default().lines().rev().take(5).collect::<Vec<_>>().join(" | ")
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        wait_or_kill(&mut self.child, Duration::from_secs(5));
    }
}

/// Waits up to `grace` for a child asked to stop, then kills it.
fn wait_or_kill(child: &mut Child, grace: Duration) {
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
struct OurBinaries {
    gateway: PathBuf,
    worker: PathBuf,
}

/// `gateway` and `worker` next to this example (`<target>/release/`), or
/// from `GATEWAY_BIN` / `WORKER_BIN`.
fn our_binaries() -> Result<OurBinaries, String> {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| if d.ends_with("examples") { d.parent() } else { Some(d) }).unwrap().to_path_buf();
    let pick = |var: &str, name: &str| std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| dir.join(name));
    let b = OurBinaries { gateway: pick("GATEWAY_BIN", "gateway"), worker: pick("WORKER_BIN", "worker") };
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

fn start_ours(
    bins: &OurBinaries,
    redis_url: &str,
    port: u16,
    concurrency: usize,
    extra: &[&str],
    with_worker: bool,
    logs: &Path,
) -> Result<Vec<Proc>, String> {
    let mut gw = Command::new(&bins.gateway);
    gw.args(["--listen", &format!("127.0.0.1:{port}"), "--redis-url", redis_url, "--jwt-secret", SECRET, "--plain-ws", "--services", "demo"])
        .args(extra)
        .env("RUST_LOG", "warn");
    let mut procs = vec![Proc::spawn("gateway", gw, logs, &format!("ours-{port}"))?];
    if with_worker {
        let mut w = Command::new(&bins.worker);
        w.args(["--redis-url", redis_url, "--concurrency", &concurrency.to_string(), "demo"]).env("RUST_LOG", "warn");
        procs.push(Proc::spawn("worker", w, logs, &format!("ours-{port}"))?);
    }
    wait_port(port, &mut procs)?;
    Ok(procs)
}

struct PrdStack {
    dir: PathBuf,
    runtime: PathBuf,
    runtime_label: String,
}

/// Installs the pinned packages (once per lock file) and picks the runtime:
/// Bun from the package, or Node when `PRD_RUNTIME=node` or Bun cannot run.
fn prd_setup() -> PrdStack {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("prd-stack");
    let lock = std::fs::read(dir.join("package-lock.json")).expect("prd-stack/package-lock.json");
    let stamp = dir.join("node_modules/.bench-stamp");
    if std::fs::read(&stamp).ok().as_deref() != Some(&lock[..]) {
        eprintln!("prd-stack: npm ci");
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "npm ci in {} failed", dir.display());
        std::fs::write(&stamp, &lock).unwrap();
    }
    let bun = dir.join("node_modules/.bin/bun");
    let forced_node = std::env::var("PRD_RUNTIME").as_deref() == Ok("node");
    let bun_version = (!forced_node)
        .then(|| Command::new(&bun).arg("--version").output().ok())
        .flatten()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match bun_version {
        Some(v) => PrdStack { dir, runtime: bun, runtime_label: format!("Bun {v}") },
        None => {
            let v = Command::new("node").arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
            if !forced_node {
                eprintln!("prd-stack: Bun does not run here; falling back to Node {v}");
            }
            let why = if forced_node { "PRD_RUNTIME=node" } else { "Bun fallback" };
            PrdStack { dir, runtime: PathBuf::from("node"), runtime_label: format!("Node {v}, {why}") }
        }
    }
}

fn start_prd(prd: &PrdStack, redis_url: &str, port: u16, concurrency: usize, with_worker: bool, logs: &Path) -> Result<Vec<Proc>, String> {
    let mut server = Command::new(&prd.runtime);
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
        w.arg("worker.mjs").current_dir(&prd.dir).env("REDIS_URL", redis_url).env("CONCURRENCY", concurrency.to_string());
        procs.push(Proc::spawn("worker", w, logs, &format!("prd-{port}"))?);
    }
    wait_port(port, &mut procs)?;
    Ok(procs)
}

fn wait_port(port: u16, procs: &mut [Proc]) -> Result<(), String> {
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
fn cpu_seconds_of(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Raises the soft RLIMIT_NOFILE to the hard one (children inherit it).
fn raise_nofile() -> (u64, u64) {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((0, 0))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// (redis-server CPU seconds, commands executed including those inside
/// scripts, not counting INFO).
fn redis_stats(url: &str) -> (f64, f64) {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    let info: String = redis::cmd("INFO").arg("all").query(&mut con).unwrap();
    let (mut cpu, mut calls) = (0.0, 0.0);
    for line in info.lines() {
        if let Some(v) = line.strip_prefix("used_cpu_sys:").or_else(|| line.strip_prefix("used_cpu_user:")) {
            cpu += v.trim().parse::<f64>().unwrap_or(0.0);
        }
        if let Some(rest) = line.strip_prefix("cmdstat_") {
            if !rest.starts_with("info:") {
                calls += rest
                    .split("calls=")
                    .nth(1)
                    .and_then(|r| r.split(',').next())
                    .and_then(|c| c.parse::<f64>().ok())
                    .unwrap_or(0.0);
            }
        }
    }
    (cpu, calls)
}

/// Calls per Redis command (including those inside scripts), by name.
fn command_counts(url: &str) -> HashMap<String, f64> {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut con).unwrap();
    info.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("cmdstat_")?;
            let (name, stats) = rest.split_once(':')?;
            let calls = stats.split("calls=").nth(1)?.split(',').next()?.parse().ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

/// With `BENCH_COMMANDS` set: which commands a scenario cost, per call.
fn print_command_mix(peer: &str, label: &str, calls: usize, before: &HashMap<String, f64>, after: &HashMap<String, f64>) {
    let mut mix: Vec<(f64, &str)> = after
        .iter()
        .map(|(name, n)| ((n - before.get(name).copied().unwrap_or(0.0)) / calls as f64, name.as_str()))
        .filter(|(per_call, name)| *per_call > 0.005 && *name != "info")
        .collect();
    mix.sort_by(|a, b| b.0.total_cmp(&a.0));
    let text: Vec<String> = mix.iter().map(|(per_call, name)| format!("{name} {per_call:.2}")).collect();
    eprintln!("{peer} {label} commands per call: {}", text.join(", "));
}

fn flushall(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
}

// ------------------------------------------------------------- load client

fn token(sub: &str) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 6 * 3600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": sub, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(base: &str, sub: &str, config: WebSocketConfig) -> Result<Ws, String> {
    let url = format!("{base}?token={}", token(sub));
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await.map_err(|e| format!("connect: {e}"))?;
    Ok(ws)
}

fn call(id: u64, text: &str) -> Message {
    Message::text(json!({"jsonrpc": "2.0", "id": id, "method": "demo.echo", "params": {"i": id, "text": text}}).to_string())
}

/// Both peers up: one call answered (retried while the worker starts).
async fn ready_call(base: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            let mut ws = connect(base, "bench-ready", WebSocketConfig::default()).await?;
            ws.send(call(1, "ready")).await.map_err(|e| e.to_string())?;
            while let Some(m) = ws.next().await {
                if let Message::Text(t) = m.map_err(|e| e.to_string())? {
                    let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
                    if v["id"] == json!(1) {
                        return if v["result"]["echo"]["i"] == json!(1) { Ok(()) } else { Err(format!("unexpected answer {v}")) };
                    }
                }
            }
            Err("closed".to_string())
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) if Instant::now() > deadline => return Err(e),
            Err(_) if Instant::now() > deadline => return Err("no answer to a call in 30 s".into()),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

struct Load {
    calls: usize,
    errors: usize,
    first_error: Option<String>,
    seconds: f64,
    /// Round trips in microseconds.
    hist: Histogram<u64>,
}

impl Load {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.seconds
    }
    fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

/// `sockets` sockets (connected before the clock starts), each keeping
/// `in_flight` calls outstanding, `calls` calls in all.
async fn run_load(base: &str, sockets: usize, in_flight: usize, calls: usize, payload: usize, timeout: Duration) -> Result<Load, String> {
    let config = WebSocketConfig::default().write_buffer_size(0);
    let mut conns = Vec::with_capacity(sockets);
    for s in 0..sockets {
        conns.push(connect(base, &format!("bench-{s}"), config).await?);
    }
    let text = "x".repeat(payload);
    let start = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            let n = calls / sockets + usize::from(i < calls % sockets);
            tokio::spawn(drive(ws, n, in_flight, text.clone()))
        })
        .collect();
    let joined = tokio::time::timeout(timeout, futures::future::join_all(tasks))
        .await
        .map_err(|_| format!("not done after {} s", timeout.as_secs()))?;
    let seconds = start.elapsed().as_secs_f64();
    let mut load = Load { calls, errors: 0, first_error: None, seconds, hist: new_hist() };
    for r in joined {
        let (hist, errors, first_error) = r.map_err(|e| e.to_string())??;
        load.hist.add(&hist).unwrap();
        load.errors += errors;
        load.first_error = load.first_error.or(first_error);
    }
    Ok(load)
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).unwrap()
}

type Drive = Result<(Histogram<u64>, usize, Option<String>), String>;

/// One socket: keeps `in_flight` calls outstanding until `n` are answered.
async fn drive(ws: Ws, n: usize, in_flight: usize, text: String) -> Drive {
    let (mut tx, mut rx) = ws.split();
    let mut hist = new_hist();
    let mut sent: HashMap<u64, Instant> = HashMap::with_capacity(in_flight * 2);
    let (mut next, mut done, mut errors, mut first_error) = (0u64, 0usize, 0usize, None);
    while (next as usize) < n.min(in_flight) {
        sent.insert(next, Instant::now());
        tx.feed(call(next, &text)).await.map_err(|e| e.to_string())?;
        next += 1;
    }
    tx.flush().await.map_err(|e| e.to_string())?;
    while done < n {
        let msg = rx.next().await.ok_or("socket closed by the server")?.map_err(|e| e.to_string())?;
        let Message::Text(t) = msg else {
            if let Message::Close(f) = msg {
                return Err(format!("closed by the server: {f:?}"));
            }
            continue;
        };
        let v: Value = serde_json::from_str(&t).map_err(|e| format!("bad JSON from the server: {e}"))?;
        // Notifications (rpc.accepted, rpc.progress) carry their id in params.
        let Some(id) = v.get("id").and_then(Value::as_u64) else {
            if v.get("method").is_none() {
                errors += 1;
                first_error.get_or_insert_with(|| t.to_string());
            }
            continue;
        };
        let Some(t0) = sent.remove(&id) else {
            return Err(format!("answer to an unknown id: {t}"));
        };
        hist.record(t0.elapsed().as_micros().max(1) as u64).unwrap();
        if v["result"]["echo"]["i"] != json!(id) {
            errors += 1;
            first_error.get_or_insert_with(|| t.to_string());
        }
        done += 1;
        if (next as usize) < n {
            sent.insert(next, Instant::now());
            tx.send(call(next, &text)).await.map_err(|e| e.to_string())?;
            next += 1;
        }
    }
    let _ = tx.send(Message::Close(None)).await;
    Ok((hist, errors, first_error))
}

// -------------------------------------------------------------- idle test

struct IdleResult {
    peer: Peer,
    label: &'static str,
    count: usize,
    /// (connections, VmRSS KiB) after each helper process finished, and at rest.
    steps: Vec<(usize, u64)>,
    base_kb: u64,
    hwm_kb: u64,
    connect_seconds: f64,
}

impl IdleResult {
    fn per_conn_kib(&self) -> f64 {
        let last = self.steps.last().map(|s| s.1).unwrap_or(self.base_kb);
        (last as f64 - self.base_kb as f64) / self.count.max(1) as f64
    }
}

/// A helper process holding idle connections; they close when it ends.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    _stdout: BufReader<ChildStdout>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.stdin.take());
        wait_or_kill(&mut self.child, Duration::from_secs(10));
    }
}

fn idle_test(
    peer: Peer,
    bins: Option<&OurBinaries>,
    prd: Option<&PrdStack>,
    redis_url: &str,
    count: usize,
    logs: &Path,
) -> Result<IdleResult, String> {
    let port = free_port();
    eprintln!("{}: idle: {count} connections", peer.name());
    let max_conn = (count + 1000).to_string();
    let mut procs = match peer {
        Peer::Ours => start_ours(bins.ok_or("no binaries")?, redis_url, port, 1, &["--max-connections", &max_conn], false, logs)?,
        Peer::Prd => start_prd(prd.ok_or("no prd stack")?, redis_url, port, 1, false, logs)?,
    };
    let front = &mut procs[0];
    let base = format!("ws://127.0.0.1:{port}/ws");
    // Warm the accept path with a few connections, closed again.
    hold(&base, 0, 100)?;
    std::thread::sleep(Duration::from_secs(1));
    let base_kb = front.memory_kb().1;
    let started = Instant::now();
    let mut holders = Vec::new();
    let mut steps = Vec::new();
    let mut opened = 0;
    while opened < count {
        let n = PER_HOLDER.min(count - opened);
        holders.push(hold(&base, opened, n)?);
        opened += n;
        front.check_alive()?;
        steps.push((opened, front.memory_kb().1));
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    front.check_alive()?;
    let (hwm_kb, rss_kb) = front.memory_kb();
    steps.push((opened, rss_kb));
    drop(holders);
    Ok(IdleResult { peer, label: peer.labels()[0], count, steps, base_kb, hwm_kb, connect_seconds })
}

/// Starts a helper holding `n` connections (users `idle-<first>`...) and
/// waits until all are open; with `n` = 100 and first = 0 it is dropped at
/// once (warm-up).
fn hold(base: &str, first: usize, n: usize) -> Result<Holder, String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--hold-idle", base, &first.to_string(), &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdin = child.stdin.take();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).map_err(|e| e.to_string())?;
    let holder = Holder { child, stdin, _stdout: stdout };
    if line.trim() != format!("ready {n}") {
        return Err(format!("idle helper: {}", line.trim()));
    }
    Ok(holder)
}

/// `--hold-idle BASE FIRST N`: opens N authenticated connections, prints
/// `ready N`, keeps them (answering pings) until stdin closes.
fn hold_idle(args: &[String]) {
    let (base, first, n): (&str, usize, usize) = (&args[0], args[1].parse().unwrap(), args[2].parse().unwrap());
    let rt = runtime(1);
    let result: Result<(), String> = rt.block_on(async {
        // Small buffers: the helper's memory is not what is measured.
        let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
        let mut opened = futures::stream::iter(first..first + n)
            .map(|i| {
                let base = base.to_string();
                async move { connect(&base, &format!("idle-{i}"), config).await }
            })
            .buffer_unordered(64);
        let mut count = 0;
        while let Some(ws) = opened.next().await {
            let mut ws = ws.map_err(|e| format!("after {count} connections: {e}"))?;
            count += 1;
            tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
        }
        println!("ready {count}");
        std::io::stdout().flush().unwrap();
        // Wait for the parent to close stdin.
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .unwrap();
        Ok(())
    });
    if let Err(e) = result {
        println!("error {e}");
    }
}

// ----------------------------------------------------------------- report

struct Scenario {
    label: &'static str,
    load: Load,
    /// (VmHWM, VmRSS) KiB per process, after the scenario.
    mem: Vec<(u64, u64)>,
    /// CPU seconds per process during the scenario, then the load client's.
    cpu: Vec<f64>,
    /// redis-server CPU seconds and commands during the scenario.
    redis: (f64, f64),
    loadavg: String,
}

struct PeerResult {
    peer: Peer,
    scenarios: Vec<Scenario>,
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn report(args: &Args, results: &[PeerResult], idle: &[IdleResult]) {
    println!("\n== Round trips: demo.echo, {} B payload, worker concurrency {} ==", args.payload, args.concurrency);
    println!(
        "{:<6} {:<5} {:>7} {:>10} {:>8} {:>8} {:>9} {:>9} {:>6} {:>6} {:>21} {:>15} {:>14}",
        "load", "peer", "calls", "calls/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", ">1 s", "errors", "CPU us/call fe+wk+cl", "redis us, cmds", "loadavg after"
    );
    for label in ["1x1", "50x4"] {
        for r in results {
            if let Some(s) = r.scenarios.iter().find(|s| s.label == label) {
                let l = &s.load;
                let per_call: Vec<String> = s.cpu.iter().map(|c| format!("{:.0}", c * 1e6 / l.calls as f64)).collect();
                let redis = format!("{:.0}, {:.1}", s.redis.0 * 1e6 / l.calls as f64, s.redis.1 / l.calls as f64);
                println!(
                    "{:<6} {:<5} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>9.2} {:>9.1} {:>6} {:>6} {:>21} {:>15} {:>14}",
                    label,
                    r.peer.name(),
                    l.calls,
                    l.rate(),
                    l.ms(0.5),
                    l.ms(0.99),
                    l.ms(0.999),
                    l.hist.max() as f64 / 1000.0,
                    l.hist.count_between(1_000_000, u64::MAX),
                    l.errors,
                    per_call.join("+"),
                    redis,
                    s.loadavg
                );
                if let Some(e) = &l.first_error {
                    println!("       first error: {}", e.chars().take(300).collect::<String>());
                }
            }
        }
    }
    let find = |p: Peer| results.iter().find(|r| r.peer == p);
    if let (Some(ours), Some(prd)) = (find(Peer::Ours), find(Peer::Prd)) {
        println!("\n== Ratios, ours / PRD (targets: calls/s >= 3.00, p99 <= 0.33) ==");
        println!("{:<6} {:>9} {:>8} {:>8} {:>9}   targets", "load", "calls/s", "p50", "p99", "p99.9");
        for label in ["1x1", "50x4"] {
            let (Some(a), Some(b)) = (
                ours.scenarios.iter().find(|s| s.label == label),
                prd.scenarios.iter().find(|s| s.label == label),
            ) else {
                continue;
            };
            let (a, b) = (&a.load, &b.load);
            let rate = a.rate() / b.rate();
            let p99 = a.ms(0.99) / b.ms(0.99);
            println!(
                "{:<6} {:>9.2} {:>8.2} {:>8.2} {:>9.2}   calls/s {}, p99 {}",
                label,
                rate,
                a.ms(0.5) / b.ms(0.5),
                p99,
                a.ms(0.999) / b.ms(0.999),
                if rate >= 3.0 { "met" } else { "MISSED" },
                if p99 <= 1.0 / 3.0 { "met" } else { "MISSED" }
            );
        }
    }
    println!("\n== Memory, MiB: peak VmHWM / current VmRSS after each load ==");
    println!("{:<5} {:<8} {:>17} {:>17}", "peer", "process", "after 1x1", "after 50x4");
    let mut totals: Vec<(Peer, u64)> = Vec::new();
    for r in results {
        for (i, label) in r.peer.labels().iter().enumerate() {
            let cell = |s: &str| {
                r.scenarios
                    .iter()
                    .find(|x| x.label == s)
                    .map(|x| format!("{:.1} / {:.1}", mib(x.mem[i].0), mib(x.mem[i].1)))
                    .unwrap_or_else(|| "-".into())
            };
            println!("{:<5} {:<8} {:>17} {:>17}", r.peer.name(), label, cell("1x1"), cell("50x4"));
        }
        if let Some(last) = r.scenarios.last() {
            totals.push((r.peer, last.mem.iter().map(|m| m.0).sum()));
        }
    }
    if let (Some(o), Some(p)) = (totals.iter().find(|t| t.0 == Peer::Ours), totals.iter().find(|t| t.0 == Peer::Prd)) {
        let fe = |peer: Peer, i: usize| find(peer).and_then(|r| r.scenarios.last()).map(|s| s.mem[i].0 as f64).unwrap_or(f64::NAN);
        println!(
            "peak ratio ours / PRD: front end {:.2}, worker {:.2}, both {:.2}",
            fe(Peer::Ours, 0) / fe(Peer::Prd, 0),
            fe(Peer::Ours, 1) / fe(Peer::Prd, 1),
            o.1 as f64 / p.1 as f64
        );
    }
    for r in idle {
        println!(
            "\n== Idle: {} {} holding {} authenticated connections (one user each, opened in {:.1} s) ==",
            r.peer.name(),
            r.label,
            r.count,
            r.connect_seconds
        );
        let mut steps: Vec<String> = r.steps.iter().map(|(n, kb)| format!("{n}: {:.1}", mib(*kb))).collect();
        if let Some(last) = steps.last_mut() {
            *last = format!("3 s later: {}", last.split(": ").nth(1).unwrap_or(""));
        }
        println!("VmRSS MiB at 0: {:.1}; {}; peak VmHWM {:.1}", mib(r.base_kb), steps.join("; "), mib(r.hwm_kb));
        let per = r.per_conn_kib();
        print!("RSS increase per idle connection: {per:.2} KiB");
        if r.peer == Peer::Ours {
            print!(" (target < 16 KiB: {})", if per < 16.0 { "met" } else { "MISSED" });
        }
        println!();
    }
}
