//! The HTTP routes: `/ws` (the upgrade, `upgrade.rs`), `/healthz` (what
//! the gateway itself sees of Redis) and `/metrics` (Prometheus text, with
//! queue depth read at scrape time).

use std::sync::Arc;
use std::time::Duration;

use bullmq_wire::JobState;
use http::{HeaderValue, StatusCode};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

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

/// All routes; anything else is 404.
pub fn routes(shared: Arc<Shared>) -> BoxedFilter<(Response,)> {
    let ws = upgrade::route(shared.clone());
    let health_state = shared.clone();
    let health = warp::path("healthz")
        .and(warp::path::end())
        .and(warp::get())
        .then(move || healthz(health_state.clone()));
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .then(move || metrics(shared.clone()));
    let not_found = warp::any().map(|| {
        text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        )
    });
    ws.or(health)
        .unify()
        .or(metrics)
        .unify()
        .or(not_found)
        .unify()
        .boxed()
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

/// 200 when the connection the calls use answers a `PING` and the gateway
/// is not shutting down, else 503. The body also tells how the notifier
/// learns of job changes and how many jobs it watches.
async fn healthz(shared: Arc<Shared>) -> Response {
    let mut con = shared.conn.command_connection();
    let ping = tokio::time::timeout(REDIS_TIMEOUT, con.ping()).await;
    let latency_ms = match &ping {
        Ok(Ok(took)) => Some(took.as_secs_f64() * 1000.0),
        _ => None,
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
    };
    let body = serde_json::json!({
        "status": status,
        "redis": if redis_ok { "ok" } else { "unreachable" },
        "redis_latency_ms": latency_ms,
        "notifier": {
            "mode": notify,
            "watched": shared.notifier.watched(),
            "state": if shared.notifier.subscribed() { "subscribed" } else { "connecting" },
        },
    });
    text(code, "application/json", body.to_string())
}

async fn metrics(shared: Arc<Shared>) -> Response {
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
        shared.metrics.render(&gauges, &depth),
    )
}
