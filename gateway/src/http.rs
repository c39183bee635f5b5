//! The HTTP routes: `/ws` (the upgrade, `upgrade.rs`), `/healthz` (what
//! the gateway itself sees of Redis) and `/metrics` (Prometheus text, with
//! queue depth read at scrape time and cached briefly; optionally behind a
//! bearer token, and on its own listener).

use std::sync::Arc;
use std::time::Duration;

use bullmq_wire::JobState;
use http::{HeaderValue, StatusCode};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use crate::metrics::ScrapeCache;
use crate::notifier::Mechanism;
use crate::state::Shared;
use crate::upgrade;

const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
const DEPTH_STATES: [JobState; 6] = [
    JobState::Waiting,
    JobState::Active,
    JobState::Delayed,
    JobState::Prioritized,
    JobState::Completed,
    JobState::Failed,
];

/// Queue depth rows: `(queue, state, count)`.
type Depth = Arc<Vec<(String, &'static str, u64)>>;

fn not_found() -> BoxedFilter<(Response,)> {
    warp::any()
        .map(|| {
            text(
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found\n".to_string(),
            )
        })
        .boxed()
}

/// All routes of the main listener (`/metrics` only when it has no
/// listener of its own); anything else is 404.
pub fn routes(shared: Arc<Shared>) -> BoxedFilter<(Response,)> {
    let ws = upgrade::route(shared.clone());
    let health_state = shared.clone();
    let health = warp::path("healthz")
        .and(warp::path::end())
        .and(warp::get())
        .then(move || healthz(health_state.clone()));
    let main = ws.or(health).unify();
    if shared.config.metrics.metrics_listen.is_some() {
        return main.or(not_found()).unify().boxed();
    }
    main.or(metrics_route(shared))
        .unify()
        .or(not_found())
        .unify()
        .boxed()
}

/// The routes of `/metrics`' own listener: `/metrics`, else 404.
pub fn metrics_routes(shared: Arc<Shared>) -> BoxedFilter<(Response,)> {
    metrics_route(shared).or(not_found()).unify().boxed()
}

fn metrics_route(shared: Arc<Shared>) -> BoxedFilter<(Response,)> {
    let cache: Arc<ScrapeCache<Depth>> = Arc::new(ScrapeCache::new());
    warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::header::optional::<String>("authorization"))
        .then(move |auth: Option<String>| metrics(shared.clone(), cache.clone(), auth))
        .boxed()
}

/// Compares in time independent of where the first difference is.
fn same_secret(given: &[u8], want: &[u8]) -> bool {
    given.len() == want.len() && given.iter().zip(want).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
}

fn authorized(shared: &Shared, header: Option<&str>) -> bool {
    let Some(want) = &shared.config.metrics.metrics_token else {
        return true;
    };
    header
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|given| same_secret(given.trim().as_bytes(), want.as_bytes()))
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut res = Response::new(body.into());
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    res
}

/// 200 when the connection the calls use answers a `PING` (on a cluster:
/// the master of every service's queue does) and the gateway is not
/// shutting down, else 503. The body also tells where Redis is (for
/// Sentinel, the master in use; on a cluster, each queue's node), how the
/// notifier learns of job changes and how many jobs it watches, and, when
/// a worker runs in this process, its state (which does not change the
/// status).
async fn healthz(shared: Arc<Shared>) -> Response {
    let (latency_ms, queue_nodes) = if shared.conn.is_cluster() {
        cluster_health(&shared).await
    } else {
        let mut con = shared.conn.command_connection();
        let ping = tokio::time::timeout(REDIS_TIMEOUT, con.ping()).await;
        let latency_ms = match &ping {
            Ok(Ok(took)) => Some(took.as_secs_f64() * 1000.0),
            _ => None,
        };
        (latency_ms, serde_json::Map::new())
    };
    let redis_ok = latency_ms.is_some();
    let (code, status) = match (redis_ok, shared.shutting_down()) {
        (true, false) => (StatusCode::OK, "ok"),
        (_, true) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
        (false, false) => (StatusCode::SERVICE_UNAVAILABLE, "error"),
    };
    let notify = match shared.notifier.mechanism() {
        Mechanism::Keyspace => "keyspace",
        Mechanism::EventStreams => "events",
        Mechanism::Published => "published",
    };
    let mut body = serde_json::json!({
        "status": status,
        "redis": if redis_ok { "ok" } else { "unreachable" },
        "redis_latency_ms": latency_ms,
        "redis_address": shared.conn.serving_address(),
        "redis_queues": queue_nodes,
        "notifier": {
            "mode": notify,
            "watched": shared.notifier.watched(),
            "state": if shared.notifier.subscribed() { "subscribed" } else { "connecting" },
        },
    });
    if let Some(probe) = shared.worker.get() {
        body["worker"] = probe.read();
    }
    text(code, "application/json", body.to_string())
}

/// On a cluster each service's queue lives on one master, and every one of
/// them must answer: a PING to each, by queue. The slowest round trip, or
/// `None` when one did not answer.
async fn cluster_health(
    shared: &Shared,
) -> (Option<f64>, serde_json::Map<String, serde_json::Value>) {
    let mut nodes = serde_json::Map::new();
    let mut slowest = Some(0.0_f64);
    for (name, batcher) in &shared.queues {
        let ping = tokio::time::timeout(REDIS_TIMEOUT, batcher.queue().ping()).await;
        let entry = match ping {
            Ok(Ok(took)) => {
                let ms = took.as_secs_f64() * 1000.0;
                slowest = slowest.map(|s| s.max(ms));
                serde_json::json!({"latency_ms": ms})
            }
            Ok(Err(e)) => {
                slowest = None;
                serde_json::json!({"error": e.to_string()})
            }
            Err(_) => {
                slowest = None;
                serde_json::json!({"error": "no answer in time"})
            }
        };
        nodes.insert(name.clone(), entry);
    }
    (slowest, nodes)
}

async fn metrics(
    shared: Arc<Shared>,
    cache: Arc<ScrapeCache<Depth>>,
    auth: Option<String>,
) -> Response {
    if !authorized(&shared, auth.as_deref()) {
        let mut res = text(
            StatusCode::UNAUTHORIZED,
            "text/plain",
            "bearer token required\n".to_string(),
        );
        res.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
        return res;
    }
    let ttl = shared.config.metrics.metrics_cache;
    let depth = cache.get(ttl, || read_depth(&shared)).await;
    render(&shared, &depth)
}

/// Queue depth of every served queue (one `get_job_counts` each).
async fn read_depth(shared: &Shared) -> Depth {
    let mut depth = Vec::new();
    let mut names: Vec<&String> = shared.queues.keys().collect();
    names.sort();
    for name in names {
        let queue = shared.queues[name].queue();
        if let Ok(Ok(counts)) =
            tokio::time::timeout(REDIS_TIMEOUT, queue.get_job_counts(&DEPTH_STATES)).await
        {
            for state in DEPTH_STATES {
                depth.push((
                    name.clone(),
                    state.as_str(),
                    counts.get(&state).copied().unwrap_or(0),
                ));
            }
        }
    }
    Arc::new(depth)
}

fn render(shared: &Shared, depth: &[(String, &'static str, u64)]) -> Response {
    let keyspace = if shared.notifier.mechanism() == Mechanism::Keyspace {
        1.0
    } else {
        0.0
    };
    let gauges = [
        (
            "gateway_connections",
            "Open WebSocket connections.",
            shared.slots.open() as f64,
        ),
        (
            "gateway_watched_jobs",
            "Jobs watched by at least one socket.",
            shared.notifier.watched() as f64,
        ),
        (
            "gateway_notify_keyspace",
            "1 when keyspace notifications are used, 0 for events streams.",
            keyspace,
        ),
        (
            "gateway_shutting_down",
            "1 once shutdown has begun.",
            if shared.shutting_down() { 1.0 } else { 0.0 },
        ),
    ];
    text(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        shared.metrics.render(&gauges, depth),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abd", b"abc"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"", b"abc"));
    }
}
