//! The tables printed at the end, with the ratios against the targets.

use crate::idle::IdleResult;
use crate::load::Load;
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

pub(crate) struct PeerResult {
    pub(crate) peer: Peer,
    pub(crate) scenarios: Vec<Scenario>,
}

pub(crate) fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

pub(crate) fn report(args: &Args, results: &[PeerResult], idle: &[IdleResult]) {
    println!(
        "\n== Round trips: demo.echo, {} B payload, worker concurrency {} ==",
        args.payload, args.concurrency
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
                let per_call: Vec<String> = s
                    .cpu
                    .iter()
                    .map(|c| format!("{:.0}", c * 1e6 / l.calls as f64))
                    .collect();
                let redis = format!(
                    "{:.0}, {:.1}",
                    s.redis.0 * 1e6 / l.calls as f64,
                    s.redis.1 / l.calls as f64
                );
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
