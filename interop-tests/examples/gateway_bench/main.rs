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
//! With `--open-loop R1,R2,...` it also runs, per peer and rate, an
//! **open-loop** load: `--open-sockets` sockets [50] get calls on a fixed
//! schedule of R calls/s for `--open-secs` seconds [10] (after 1 s at the
//! same rate, not measured), latency measured from each call's scheduled
//! send time (no coordinated omission; see `open_loop`), reporting the
//! achieved rate, p50/p99/p99.9, lost calls and CPU per call as above.
//!
//! `--tls` runs everything over `wss://`: a throwaway self-signed
//! certificate (rcgen) is written to the logs folder, our gateway gets it as
//! `--tls-cert-file/--tls-key-file` and the PRD server as
//! `TLS_CERT_FILE/TLS_KEY_FILE`, and the load client (and the idle helpers)
//! trust it alone.
//!
//! Options (defaults in brackets):
//! `--calls-1 N` [5000], `--calls-50 N` [20000], `--idle N` [20000; 0 skips],
//! `--concurrency N` worker concurrency for both peers [50], `--payload N`
//! bytes of text in each call's params [64], `--warmup N` calls [2000],
//! `--peers ours,prd` [both, in this order], `--idle-peers ours[,prd]`
//! [ours], `--client-threads N` load client threads [1], `--threads N`
//! runtime threads of our gateway and worker [0: one per core, their
//! default; the PRD stack's Bun runs JavaScript on one], `--timeout-secs N`
//! per scenario [300], `--tls`, `--open-loop R,...` [none],
//! `--open-secs N` [10], `--open-sockets N` [50].
//!
//! Open files: 20,000 idle connections need that many descriptors in the
//! gateway (the load side is spread over helper processes). The program
//! raises its soft `RLIMIT_NOFILE` to the hard limit, which the children
//! inherit; raise the hard limit first (`ulimit -Hn 30000`, which needs
//! CAP_SYS_RESOURCE, e.g. `docker run --ulimit nofile=30000:30000`) when it
//! is below `--idle` + 100, else the idle count is capped to fit and the
//! report says so.
//!
//! Everything runs on 127.0.0.1, over plain `ws://` unless `--tls` (the PRD
//! and our defaults are WSS). Counts and time are bounded by the options.
//!
//! This file parses the options and runs the scenarios; `procs` starts and
//! watches the processes under test, `load` is the load client, `idle` the
//! idle-connection test, `redis_stats` reads what Redis spent, and `report`
//! prints the tables.

use std::time::Duration;

use interop_tests::RedisServer;

mod idle;
mod load;
mod open_loop;
mod procs;
mod redis_stats;
mod report;

use idle::{hold_idle, idle_test};
use load::{ready_call, run_load, Target, Tls};
use open_loop::run_open_loop;
use procs::{
    cpu_seconds_of, free_port, loadavg, our_binaries, prd_setup, raise_nofile, start_ours,
    start_prd, OurBinaries,
};
use redis_stats::{command_counts, flushall, ping_round_trips, print_command_mix, redis_stats};
use report::{report, OpenScenario, PeerResult, Scenario};

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
    threads: usize,
    timeout: Duration,
    tls: bool,
    open_loop: Vec<f64>,
    open_secs: u64,
    open_sockets: usize,
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
        threads: 0,
        timeout: Duration::from_secs(300),
        tls: false,
        open_loop: Vec::new(),
        open_secs: 10,
        open_sockets: 50,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--tls" {
            a.tls = true;
            continue;
        }
        let mut value = || {
            it.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
                .clone()
        };
        let num = |v: String| -> usize {
            v.parse()
                .unwrap_or_else(|_| panic!("{flag}: not a number: {v}"))
        };
        let peers = |v: String| -> Vec<Peer> {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(Peer::parse)
                .collect()
        };
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
            "--threads" => a.threads = num(value()),
            "--timeout-secs" => a.timeout = Duration::from_secs(num(value()) as u64),
            "--open-loop" => {
                a.open_loop = value()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|r| {
                        r.parse()
                            .unwrap_or_else(|_| panic!("--open-loop: not a rate: {r}"))
                    })
                    .collect()
            }
            "--open-secs" => a.open_secs = num(value()) as u64,
            "--open-sockets" => a.open_sockets = num(value()).max(1),
            "-h" | "--help" => {
                println!("see the header of interop-tests/examples/gateway_bench/main.rs for the options");
                std::process::exit(0);
            }
            other => {
                panic!("unknown option {other:?}; see the header of examples/gateway_bench/main.rs")
            }
        }
    }
    a
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .unwrap()
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

    let ours_bins = our_binaries().map(|b| OurBinaries {
        threads: args.threads,
        ..b
    });
    let prd = if args.peers.contains(&Peer::Prd) || args.idle_peers.contains(&Peer::Prd) {
        Some(prd_setup())
    } else {
        None
    };
    let needs_ours = args.peers.contains(&Peer::Ours)
        || (args.idle > 0 && args.idle_peers.contains(&Peer::Ours));
    if let (true, Err(e)) = (needs_ours, &ours_bins) {
        eprintln!("{e}");
        std::process::exit(2);
    }

    let redis = RedisServer::start();
    let logs = tempfile::Builder::new()
        .prefix("gateway-bench-")
        .tempdir()
        .unwrap()
        .keep();
    let tls = args.tls.then(|| Tls::generate(&logs));
    let cert = tls.as_ref().map(|t| t.cert_file.as_path());
    println!(
        "gateway benchmark: ours (gateway + worker) vs the PRD stack ({}), one redis-server, {} on 127.0.0.1",
        prd.as_ref().map(|p| p.runtime_label.as_str()).unwrap_or("not run"),
        if args.tls { "wss:// (TLS, throwaway self-signed certificate)" } else { "plain ws://" }
    );
    println!(
        "calls: {} (1x1), {} (50x4), warm-up {}; payload {} B; worker concurrency {}; our runtime threads {}; client threads {}; cores {}; loadavg {}; RLIMIT_NOFILE {}/{}; logs in {}\n",
        args.calls_1,
        args.calls_50,
        args.warmup,
        args.payload,
        args.concurrency,
        if args.threads == 0 { "one per core".to_string() } else { format!("{} per process", args.threads) },
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
                tls.as_ref(),
                &logs,
            ),
            Peer::Prd => start_prd(
                prd.as_ref().unwrap(),
                &redis.url(),
                port,
                args.concurrency,
                true,
                tls.as_ref(),
                &logs,
            ),
        };
        let procs = match procs {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{}: could not start: {e}", peer.name());
                continue;
            }
        };
        let base = Target::new(port, cert);
        if let Err(e) = rt.block_on(ready_call(&base)) {
            eprintln!(
                "{}: not ready: {e}; logs in {}",
                peer.name(),
                logs.display()
            );
            continue;
        }
        eprintln!("{}: warming up ({} calls)", peer.name(), args.warmup);
        if let Err(e) = rt.block_on(run_load(
            &base,
            50.min(args.warmup.max(1)),
            4,
            args.warmup,
            args.payload,
            args.timeout,
        )) {
            eprintln!("{}: warm-up failed: {e}", peer.name());
            continue;
        }
        let mut r = PeerResult {
            peer,
            scenarios: Vec::new(),
            open: Vec::new(),
            ping: None,
        };
        for (label, sockets, in_flight, calls) in
            [("1x1", 1, 1, args.calls_1), ("50x4", 50, 4, args.calls_50)]
        {
            std::thread::sleep(Duration::from_millis(500));
            if label == "1x1" && calls > 0 {
                r.ping = ping_round_trips(&redis.url(), 2000);
            }
            let cpu_before: Vec<f64> = procs.iter().map(|p| p.cpu_seconds()).collect();
            let client_before = cpu_seconds_of("self");
            let redis_before = redis_stats(&redis.url());
            let commands_before = command_counts(&redis.url());
            eprintln!("{}: {label}: {calls} calls", peer.name());
            let load = rt.block_on(run_load(
                &base,
                sockets,
                in_flight,
                calls,
                args.payload,
                args.timeout,
            ));
            let mem: Vec<(u64, u64)> = procs.iter().map(|p| p.memory_kb()).collect();
            let mut cpu: Vec<f64> = procs
                .iter()
                .zip(&cpu_before)
                .map(|(p, b)| p.cpu_seconds() - b)
                .collect();
            cpu.push(cpu_seconds_of("self") - client_before);
            let redis_after = redis_stats(&redis.url());
            if std::env::var_os("BENCH_COMMANDS").is_some() {
                print_command_mix(
                    peer.name(),
                    label,
                    calls,
                    &commands_before,
                    &command_counts(&redis.url()),
                );
            }
            let redis = (
                redis_after.0 - redis_before.0,
                redis_after.1 - redis_before.1,
            );
            match load {
                Ok(load) => r.scenarios.push(Scenario {
                    label,
                    load,
                    mem,
                    cpu,
                    redis,
                    loadavg: loadavg(),
                }),
                Err(e) => eprintln!(
                    "{}: {label} failed: {e}; logs in {}",
                    peer.name(),
                    logs.display()
                ),
            }
        }
        for &rate in &args.open_loop {
            std::thread::sleep(Duration::from_millis(500));
            eprintln!(
                "{}: open loop {rate}/s: 1 s warm-up, then {} s over {} sockets",
                peer.name(),
                args.open_secs,
                args.open_sockets
            );
            let grace = Duration::from_secs(30);
            if let Err(e) = rt.block_on(run_open_loop(
                &base,
                args.open_sockets,
                rate,
                Duration::from_secs(1),
                args.payload,
                grace,
            )) {
                eprintln!("{}: open-loop warm-up failed: {e}", peer.name());
                continue;
            }
            std::thread::sleep(Duration::from_millis(500));
            let cpu_before: Vec<f64> = procs.iter().map(|p| p.cpu_seconds()).collect();
            let client_before = cpu_seconds_of("self");
            let redis_before = redis_stats(&redis.url());
            let load = rt.block_on(run_open_loop(
                &base,
                args.open_sockets,
                rate,
                Duration::from_secs(args.open_secs),
                args.payload,
                grace,
            ));
            let mut cpu: Vec<f64> = procs
                .iter()
                .zip(&cpu_before)
                .map(|(p, b)| p.cpu_seconds() - b)
                .collect();
            cpu.push(cpu_seconds_of("self") - client_before);
            let redis_after = redis_stats(&redis.url());
            match load {
                Ok(load) => r.open.push(OpenScenario {
                    load,
                    cpu,
                    redis: (
                        redis_after.0 - redis_before.0,
                        redis_after.1 - redis_before.1,
                    ),
                    loadavg: loadavg(),
                }),
                Err(e) => eprintln!(
                    "{}: open loop {rate}/s failed: {e}; logs in {}",
                    peer.name(),
                    logs.display()
                ),
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
            match idle_test(
                peer,
                ours_bins.as_ref().ok(),
                prd.as_ref(),
                &redis.url(),
                count,
                tls.as_ref(),
                &logs,
            ) {
                Ok(r) => idle_results.push(r),
                Err(e) => eprintln!(
                    "{}: idle test failed: {e}; logs in {}",
                    peer.name(),
                    logs.display()
                ),
            }
        }
    }
    report(&args, &results, &idle_results);
}
