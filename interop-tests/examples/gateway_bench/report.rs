//! The tables printed at the end, with the ratios against the targets.

use crate::idle::IdleResult;
use crate::load::Load;
use crate::open_loop::OpenLoad;
use crate::{Args, Peer};

pub(crate) struct Scenario {
    pub(crate) label: &'static str,
    pub(crate) load: Load,
    /// (VmHWM, VmRSS) KiB per process, after the scenario.
    pub(crate) mem: Vec<(u64, u64)>,
    /// CPU seconds per process during the scenario, then the load client's.
    pub(crate) cpu: Vec<f64>,
    /// redis-server CPU seconds and commands during the scenario.
    pub(crate) redis: (f64, f64),
    pub(crate) loadavg: String,
}

pub(crate) struct OpenScenario {
    pub(crate) load: OpenLoad,
    /// CPU seconds per process during the run, then the load client's.
    pub(crate) cpu: Vec<f64>,
    /// redis-server CPU seconds and commands during the run.
    pub(crate) redis: (f64, f64),
    pub(crate) loadavg: String,
}

pub(crate) struct PeerResult {
    pub(crate) peer: Peer,
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) open: Vec<OpenScenario>,
    /// The median `PING` round trip to Redis just before the 1x1 load, ms.
    pub(crate) ping: Option<f64>,
}

/// CPU microseconds per call of each process, joined with `+`.
/// µs with a decimal below 100 (a gateway's few µs per call differ by
/// less than one between builds; the CPU counters' 10 ms ticks over
/// 40,000 calls resolve 0.25 µs).
fn micros(us: f64) -> String {
    if us < 100.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

fn per_call(cpu: &[f64], calls: usize) -> String {
    cpu.iter()
        .map(|c| micros(c * 1e6 / calls.max(1) as f64))
        .collect::<Vec<_>>()
        .join("+")
}

fn redis_per_call(redis: (f64, f64), calls: usize) -> String {
    format!(
        "{}, {:.1}",
        micros(redis.0 * 1e6 / calls.max(1) as f64),
        redis.1 / calls.max(1) as f64
    )
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

pub(crate) fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

pub(crate) fn report(args: &Args, results: &[PeerResult], idle: &[IdleResult]) {
    println!(
        "\n== Round trips (closed loop): demo.echo, {} B payload, worker concurrency {}, {} ==",
        args.payload,
        args.concurrency,
        if args.tls { "wss://" } else { "ws://" }
    );
    println!(
        "{:<6} {:<5} {:>7} {:>10} {:>8} {:>8} {:>9} {:>9} {:>6} {:>6} {:>21} {:>15} {:>14}",
        "load",
        "peer",
        "calls",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        ">1 s",
        "errors",
        "CPU us/call fe+wk+cl",
        "redis us, cmds",
        "loadavg after"
    );
    for label in ["1x1", "50x4"] {
        for r in results {
            if let Some(s) = r.scenarios.iter().find(|s| s.label == label) {
                let l = &s.load;
                let cpu = per_call(&s.cpu, l.calls);
                let redis = redis_per_call(s.redis, l.calls);
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
                    cpu,
                    redis,
                    s.loadavg
                );
                if let Some(e) = &l.first_error {
                    println!(
                        "       first error: {}",
                        e.chars().take(300).collect::<String>()
                    );
                }
            }
        }
    }
    let find = |p: Peer| results.iter().find(|r| r.peer == p);
    if let (Some(ours), Some(prd)) = (find(Peer::Ours), find(Peer::Prd)) {
        println!("\n== Ratios, ours / PRD (targets: calls/s >= 3.00, p99 <= 0.33) ==");
        println!(
            "{:<6} {:>9} {:>8} {:>8} {:>9}   targets",
            "load", "calls/s", "p50", "p99", "p99.9"
        );
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
    open_loop_report(args, results);
    issue14_targets(results);
    println!("\n== Memory, MiB: peak VmHWM / current VmRSS after each load ==");
    println!(
        "{:<5} {:<8} {:>17} {:>17}",
        "peer", "process", "after 1x1", "after 50x4"
    );
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
            println!(
                "{:<5} {:<8} {:>17} {:>17}",
                r.peer.name(),
                label,
                cell("1x1"),
                cell("50x4")
            );
        }
        if let Some(last) = r.scenarios.last() {
            totals.push((r.peer, last.mem.iter().map(|m| m.0).sum()));
        }
    }
    if let (Some(o), Some(p)) = (
        totals.iter().find(|t| t.0 == Peer::Ours),
        totals.iter().find(|t| t.0 == Peer::Prd),
    ) {
        let fe = |peer: Peer, i: usize| {
            find(peer)
                .and_then(|r| r.scenarios.last())
                .map(|s| s.mem[i].0 as f64)
                .unwrap_or(f64::NAN)
        };
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
        let mut steps: Vec<String> = r
            .steps
            .iter()
            .map(|(n, kb)| format!("{n}: {:.1}", mib(*kb)))
            .collect();
        if let Some(last) = steps.last_mut() {
            *last = format!("3 s later: {}", last.split(": ").nth(1).unwrap_or(""));
        }
        println!(
            "VmRSS MiB at 0: {:.1}; {}; peak VmHWM {:.1}",
            mib(r.base_kb),
            steps.join("; "),
            mib(r.hwm_kb)
        );
        let per = r.per_conn_kib();
        print!("RSS increase per idle connection: {per:.2} KiB");
        if r.peer == Peer::Ours {
            print!(
                " (target < 16 KiB: {})",
                if per < 16.0 { "met" } else { "MISSED" }
            );
        }
        println!();
    }
}

fn open_loop_report(args: &Args, results: &[PeerResult]) {
    if args.open_loop.is_empty() {
        return;
    }
    println!(
        "\n== Open loop: {} sockets, calls on a fixed schedule for {} s, latency from the scheduled send ({}) ==",
        args.open_sockets,
        args.open_secs,
        if args.tls { "wss://" } else { "ws://" }
    );
    println!(
        "{:>7} {:<5} {:>7} {:>10} {:>8} {:>8} {:>9} {:>9} {:>6} {:>6} {:>11} {:>21} {:>15} {:>14}",
        "rate/s",
        "peer",
        "calls",
        "achieved/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "lost",
        "errors",
        "lag p99 ms",
        "CPU us/call fe+wk+cl",
        "redis us, cmds",
        "loadavg after"
    );
    for &rate in &args.open_loop {
        for r in results {
            let Some(s) = r.open.iter().find(|s| s.load.rate == rate) else {
                continue;
            };
            let l = &s.load;
            println!(
                "{:>7.0} {:<5} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>9.2} {:>9.1} {:>6} {:>6} {:>11.2} {:>21} {:>15} {:>14}",
                rate,
                r.peer.name(),
                l.scheduled,
                l.achieved(),
                l.ms(0.5),
                l.ms(0.99),
                l.ms(0.999),
                l.hist.max() as f64 / 1000.0,
                l.lost(),
                l.errors,
                l.lag.value_at_quantile(0.99) as f64 / 1000.0,
                per_call(&s.cpu, l.answered),
                redis_per_call(s.redis, l.answered),
                s.loadavg
            );
            if let Some(e) = &l.first_error {
                println!(
                    "        first error: {}",
                    e.chars().take(300).collect::<String>()
                );
            }
        }
    }
    let find = |p: Peer| results.iter().find(|r| r.peer == p);
    if let (Some(ours), Some(prd)) = (find(Peer::Ours), find(Peer::Prd)) {
        for &rate in &args.open_loop {
            fn at(r: &PeerResult, rate: f64) -> Option<&OpenLoad> {
                r.open.iter().find(|s| s.load.rate == rate).map(|s| &s.load)
            }
            if let (Some(a), Some(b)) = (at(ours, rate), at(prd, rate)) {
                println!(
                    "ours / PRD at {rate:.0}/s: p50 {:.2}, p99 {:.2}, p99.9 {:.2}",
                    a.ms(0.5) / b.ms(0.5),
                    a.ms(0.99) / b.ms(0.99),
                    a.ms(0.999) / b.ms(0.999)
                );
            }
        }
    }
}

/// Issue 14's targets: at 50x4 the CPU per call of gateway + worker + Redis
/// at most a third of the PRD stack's, the gateway at most 15 us and Redis
/// at most 25 us per call; at 1x1 p50 at most 0.40 ms and p99 at most a
/// quarter of the PRD stack's.
fn issue14_targets(results: &[PeerResult]) {
    let find = |p: Peer, label: &str| {
        results
            .iter()
            .find(|r| r.peer == p)
            .and_then(|r| r.scenarios.iter().find(|s| s.label == label))
    };
    let server_us = |s: &Scenario| (s.cpu[0] + s.cpu[1] + s.redis.0) * 1e6 / s.load.calls as f64;
    println!("\n== Targets of issue 14 ==");
    if let Some(o) = find(Peer::Ours, "50x4") {
        let gw = o.cpu[0] * 1e6 / o.load.calls as f64;
        let redis = o.redis.0 * 1e6 / o.load.calls as f64;
        print!("50x4: gateway+worker+Redis {:.1} us/call", server_us(o));
        if let Some(p) = find(Peer::Prd, "50x4") {
            let ratio = server_us(o) / server_us(p);
            print!(
                " vs PRD {:.0}: ratio {ratio:.2} (<= 0.33: {})",
                server_us(p),
                met(ratio <= 1.0 / 3.0)
            );
        }
        println!(
            "; gateway {gw:.1} us/call (<= 15: {}); Redis {redis:.1} us/call (<= 25: {})",
            met(gw <= 15.0),
            met(redis <= 25.0)
        );
    }
    if let Some(o) = find(Peer::Ours, "1x1") {
        let p50 = o.load.ms(0.5);
        print!("1x1: p50 {p50:.2} ms (<= 0.40: {})", met(p50 <= 0.40));
        // One call at a time: the processes take turns, so their CPU per
        // call adds up to about the latency; and six wake-ups in a row cost
        // at least three PING round trips (see `ping_round_trips`).
        let per_call_ms = |cpu: f64| cpu * 1e3 / o.load.calls as f64;
        let cpu: Vec<String> = o
            .cpu
            .iter()
            .chain([&o.redis.0])
            .map(|c| format!("{:.2}", per_call_ms(*c)))
            .collect();
        print!(
            " [CPU per call {:.2} ms: front end, worker, client, Redis {}",
            per_call_ms(o.cpu.iter().sum::<f64>() + o.redis.0),
            cpu.join(" + ")
        );
        if let Some(ping) = results
            .iter()
            .find(|r| r.peer == Peer::Ours)
            .and_then(|r| r.ping)
        {
            print!("; PING round trip {ping:.3} ms");
        }
        print!("]");
        if let Some(p) = find(Peer::Prd, "1x1") {
            let ratio = o.load.ms(0.99) / p.load.ms(0.99);
            print!(
                "; p99 {:.2} vs PRD {:.2} ms: ratio {ratio:.2} (<= 0.25: {})",
                o.load.ms(0.99),
                p.load.ms(0.99),
                met(ratio <= 0.25)
            );
        }
        println!();
    }
}
