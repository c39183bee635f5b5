//! Prometheus metrics in the text exposition format, kept by hand: a few
//! counters, gauges and one latency histogram per method label (bounded,
//! see `labels.rs`). Queue depth is read from Redis at scrape time (see
//! `http.rs`).

mod cache;
mod labels;

pub use cache::ScrapeCache;
pub use labels::{MethodLabels, MAX_LABEL_BYTES};

use crate::FastMap;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::protocol::ErrorCode;

/// Latency bucket bounds, seconds.
const BOUNDS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BOUNDS.len()],
    count: u64,
    sum: f64,
}

/// All counters of one gateway.
#[derive(Debug, Default)]
pub struct Metrics {
    /// WebSocket connections accepted since start.
    pub connections_total: AtomicU64,
    /// Upgrades refused with 401.
    pub unauthorized_total: AtomicU64,
    /// Upgrades refused with 503 (max connections or shutting down).
    pub refused_total: AtomicU64,
    /// Progress notifications dropped because a session's job channel was full.
    pub progress_dropped_total: AtomicU64,
    /// Requests refused by a rate limit.
    pub rate_limited_total: AtomicU64,
    /// Jobs the notifier read from Redis after a change.
    pub notifier_reads_total: AtomicU64,
    labels: MethodLabels,
    /// By method label: one lock and one lookup per call, and an
    /// allocation only for a label's first call.
    by_method: Mutex<FastMap<String, MethodStats>>,
}

/// What one method label counted.
#[derive(Debug, Default, Clone)]
struct MethodStats {
    /// Calls by outcome (a handful of outcomes per method).
    outcomes: Vec<(&'static str, u64)>,
    /// Latency of the calls that ran (`None` until one did).
    latency: Option<Histogram>,
}

/// The `outcome` label of a finished call: `ok` or the error's name.
pub fn outcome_label(error_code: Option<i64>) -> &'static str {
    let Some(code) = error_code else { return "ok" };
    match ErrorCode::ALL.iter().find(|c| c.code() == code) {
        Some(ErrorCode::ParseError) => "parse_error",
        Some(ErrorCode::InvalidRequest) => "invalid_request",
        Some(ErrorCode::MethodNotFound) => "method_not_found",
        Some(ErrorCode::InvalidParams) => "invalid_params",
        Some(ErrorCode::InternalError) => "internal_error",
        Some(ErrorCode::Unauthorized) => "unauthorized",
        Some(ErrorCode::RateLimited) => "rate_limited",
        Some(ErrorCode::MessageTooLarge) => "message_too_large",
        Some(ErrorCode::NotFound) => "not_found",
        Some(ErrorCode::RedisUnavailable) => "redis_unavailable",
        Some(ErrorCode::TooManyInFlight) => "too_many_in_flight",
        Some(ErrorCode::JobFailed) => "job_failed",
        Some(ErrorCode::JobRemoved) => "job_removed",
        Some(ErrorCode::Unsubscribed) => "unsubscribed",
        None => "other_error",
    }
}

impl Metrics {
    /// Counters that label methods by `labels`.
    pub fn new(labels: MethodLabels) -> Self {
        Metrics {
            labels,
            ..Metrics::default()
        }
    }

    /// Counts a finished call and, when it ran, its latency.
    pub fn call(&self, method: &str, outcome: &'static str, elapsed: Option<Duration>) {
        let method = self.labels.label(method);
        let mut by_method = self.by_method.lock().unwrap_or_else(|p| p.into_inner());
        let stats = match by_method.get_mut(method) {
            Some(stats) => stats,
            None => by_method.entry(method.to_string()).or_default(),
        };
        match stats.outcomes.iter_mut().find(|(o, _)| *o == outcome) {
            Some((_, n)) => *n += 1,
            None => stats.outcomes.push((outcome, 1)),
        }
        if let Some(elapsed) = elapsed {
            let secs = elapsed.as_secs_f64();
            let h = stats.latency.get_or_insert_with(Histogram::default);
            for (i, bound) in BOUNDS.iter().enumerate() {
                if secs <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    /// The text exposition; `gauges` are extra `(name, help, value)` lines
    /// known only to the caller, `depth` is `(queue, state, count)`.
    pub fn render(
        &self,
        gauges: &[(&str, &str, f64)],
        depth: &[(String, &'static str, u64)],
    ) -> String {
        let mut out = String::with_capacity(4096);
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            &mut out,
            "gateway_connections_total",
            "WebSocket connections accepted.",
            self.connections_total.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "gateway_unauthorized_total",
            "Upgrades refused with 401.",
            self.unauthorized_total.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "gateway_refused_total",
            "Upgrades refused with 503.",
            self.refused_total.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "gateway_rate_limited_total",
            "Requests refused by a rate limit.",
            self.rate_limited_total.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "gateway_progress_dropped_total",
            "Progress notifications dropped for a busy socket.",
            self.progress_dropped_total.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "gateway_notifier_reads_total",
            "Watched jobs read from Redis after a change.",
            self.notifier_reads_total.load(Ordering::Relaxed),
        );
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let _ = writeln!(out, "# HELP gateway_calls_total Requests by method and outcome.\n# TYPE gateway_calls_total counter");
        let by_method = self
            .by_method
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut by_method: Vec<_> = by_method.into_iter().collect();
        by_method.sort_by(|a, b| a.0.cmp(&b.0));
        for (method, stats) in &by_method {
            let mut outcomes = stats.outcomes.clone();
            outcomes.sort();
            for (outcome, n) in outcomes {
                let _ = writeln!(
                    out,
                    "gateway_calls_total{{method=\"{}\",outcome=\"{outcome}\"}} {n}",
                    escape(method)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP gateway_call_duration_seconds From request to final response.\n# TYPE gateway_call_duration_seconds histogram"
        );
        let lat = by_method
            .into_iter()
            .filter_map(|(method, stats)| Some((method, stats.latency?)));
        for (method, h) in lat {
            let m = escape(&method);
            for (i, bound) in BOUNDS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "gateway_call_duration_seconds_bucket{{method=\"{m}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "gateway_call_duration_seconds_bucket{{method=\"{m}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "gateway_call_duration_seconds_sum{{method=\"{m}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "gateway_call_duration_seconds_count{{method=\"{m}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(out, "# HELP gateway_queue_depth Jobs per queue and state.\n# TYPE gateway_queue_depth gauge");
        for (queue, state, n) in depth {
            let _ = writeln!(
                out,
                "gateway_queue_depth{{queue=\"{}\",state=\"{state}\"}} {n}",
                escape(queue)
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.call("demo.echo", "ok", Some(Duration::from_millis(3)));
        m.call(
            "demo.echo",
            outcome_label(Some(-32010)),
            Some(Duration::from_millis(30)),
        );
        m.call("x\"y", outcome_label(Some(-32601)), None);
        let text = m.render(
            &[("gateway_connections", "Open.", 2.0)],
            &[("demo".into(), "waiting", 4)],
        );
        assert!(
            text.contains("gateway_calls_total{method=\"demo.echo\",outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("gateway_calls_total{method=\"demo.echo\",outcome=\"job_failed\"} 1"));
        assert!(
            text.contains("gateway_calls_total{method=\"other\",outcome=\"method_not_found\"} 1")
        );
        assert!(text
            .contains("gateway_call_duration_seconds_bucket{method=\"demo.echo\",le=\"0.005\"} 1"));
        assert!(text.contains("gateway_call_duration_seconds_count{method=\"demo.echo\"} 2"));
        // a method whose calls never ran has counts and no histogram
        assert!(!text.contains("gateway_call_duration_seconds_count{method=\"other\"}"));
        assert!(text.contains("gateway_connections 2"));
        assert!(text.contains("gateway_queue_depth{queue=\"demo\",state=\"waiting\"} 4"));
    }

    /// The attack: 150 calls with distinct 60 KB method names made
    /// each scrape 180 MB. Now they share the `other` label.
    #[test]
    fn long_and_odd_method_names_keep_the_scrape_small() {
        let m = Metrics::new(MethodLabels::new(["demo.echo".to_string()], 8));
        m.call("demo.echo", "ok", Some(Duration::from_millis(1)));
        let baseline = m.render(&[], &[]).len();
        for i in 0..150 {
            let name = format!("demo.{i}{}", "x".repeat(60 * 1024));
            m.call(&name, "ok", Some(Duration::from_millis(1)));
            m.call(&format!("demo.{i}\"odd"), "ok", None);
            m.call(
                &format!("demo.short{i}"),
                "ok",
                Some(Duration::from_millis(1)),
            );
        }
        let text = m.render(&[], &[]);
        assert!(
            text.contains("gateway_calls_total{method=\"other\",outcome=\"ok\"} 442"),
            "{text}"
        );
        assert!(text.contains("gateway_calls_total{method=\"demo.short7\",outcome=\"ok\"} 1"));
        assert!(!text.contains("demo.short8"), "only 8 extra labels");
        // Two label sets' worth of lines more than one call: the 8 extra
        // names and `other`, ~20 lines each.
        assert!(text.len() < baseline + 9 * 2500, "{} bytes", text.len());
    }
}
