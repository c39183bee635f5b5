//! What Redis itself spent: CPU, commands, and their mix per scenario.

use std::collections::HashMap;

/// (redis-server CPU seconds, commands executed including those inside
/// scripts, not counting INFO).
pub(crate) fn redis_stats(url: &str) -> (f64, f64) {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    let info: String = redis::cmd("INFO").arg("all").query(&mut con).unwrap();
    let (mut cpu, mut calls) = (0.0, 0.0);
    for line in info.lines() {
        if let Some(v) = line
            .strip_prefix("used_cpu_sys:")
            .or_else(|| line.strip_prefix("used_cpu_user:"))
        {
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

/// Calls and microseconds per Redis command (including those inside
/// scripts; a script's own time includes its commands'), by name.
pub(crate) fn command_counts(url: &str) -> HashMap<String, (f64, f64)> {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut con)
        .unwrap();
    let field = |stats: &str, key: &str| -> Option<f64> {
        stats.split(key).nth(1)?.split(',').next()?.parse().ok()
    };
    info.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("cmdstat_")?;
            let (name, stats) = rest.split_once(':')?;
            let calls = field(stats, "calls=")?;
            let usec = field(stats, "usec=").unwrap_or(0.0);
            Some((name.to_string(), (calls, usec)))
        })
        .collect()
}

/// With `BENCH_COMMANDS` set: which commands a scenario cost, per call, and
/// Redis' own time in them (µs per call, in brackets).
pub(crate) fn print_command_mix(
    peer: &str,
    label: &str,
    calls: usize,
    before: &HashMap<String, (f64, f64)>,
    after: &HashMap<String, (f64, f64)>,
) {
    let mut mix: Vec<(f64, f64, &str)> = after
        .iter()
        .map(|(name, (n, usec))| {
            let (n0, usec0) = before.get(name).copied().unwrap_or((0.0, 0.0));
            (
                (n - n0) / calls as f64,
                (usec - usec0) / calls as f64,
                name.as_str(),
            )
        })
        .filter(|(per_call, _, name)| *per_call > 0.005 && *name != "info")
        .collect();
    mix.sort_by(|a, b| b.0.total_cmp(&a.0));
    let text: Vec<String> = mix
        .iter()
        .map(|(per_call, usec, name)| format!("{name} {per_call:.2} [{usec:.1} µs]"))
        .collect();
    eprintln!("{peer} {label} commands per call: {}", text.join(", "));
}

pub(crate) fn flushall(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
}

/// The median of `n` round trips of `PING` to Redis, one at a time on one
/// connection, in ms; `None` when Redis does not answer (the report then
/// leaves it out). Two wake-ups each (Redis, then this client), with
/// nothing else to do: what one hop between two idle processes costs on
/// this machine at this hour. A 1x1 call makes six such wake-ups in a row
/// (gateway, Redis, worker, Redis, gateway, client), so three of these
/// round trips are its floor before any work.
pub(crate) fn ping_round_trips(url: &str, n: usize) -> Option<f64> {
    let mut con = redis::Client::open(url).ok()?.get_connection().ok()?;
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let t = std::time::Instant::now();
        let _: String = redis::cmd("PING").query(&mut con).ok()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Some(ms[ms.len() / 2])
}
