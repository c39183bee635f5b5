//! `GET /ws`: the WebSocket handshake, done here rather than with warp's
//! `ws()` filter so that tungstenite's buffers can be sized (its defaults
//! reserve 128 KiB of read buffer per connection) and so that a bad token
//! gets HTTP 401 before any upgrade.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::auth::{read_handshake, SUBPROTOCOL};
use crate::session::{self, SessionInit};
use crate::state::Shared;
use crate::user_connections::Refused;

/// The peer address, put into each request's extensions by `server.rs`.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// tungstenite's read buffer per connection, which it keeps for the
/// connection's life: one typical call frame (a few hundred bytes). A larger
/// frame grows it on demand; reads of a batch of frames take several calls,
/// served from the TLS stream's or the socket's buffer.
const READ_BUFFER: usize = 512;
/// Bytes written to the socket at once when batching frames.
const WRITE_BUFFER: usize = 16 * 1024;

/// The WebSocket settings for a message limit of `max_message` bytes:
/// frames up to twice the limit are read (and answered with -32002 when
/// over it); larger ones close the socket with 1009.
pub fn websocket_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(WRITE_BUFFER + 8 * max_message.max(64 * 1024))
        .max_message_size(Some(2 * max_message))
        .max_frame_size(Some(2 * max_message))
}

/// The `/ws` route.
pub fn route(shared: Arc<Shared>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path("ws")
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::ext::optional::<OnUpgrade>())
        .and(warp::ext::optional::<ClientAddr>())
        .map(
            move |headers: HeaderMap,
                  query: String,
                  upgrade: Option<OnUpgrade>,
                  addr: Option<ClientAddr>| {
                accept(&shared, &headers, &query, upgrade, addr)
            },
        )
}

fn plain(status: StatusCode, body: serde_json::Value) -> Response {
    let mut res = Response::new(body.to_string().into());
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn header_has(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(token)))
}

fn accept(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    query: &str,
    upgrade: Option<OnUpgrade>,
    addr: Option<ClientAddr>,
) -> Response {
    use http::header::{CONNECTION, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes().to_vec());
    let is_ws = header_has(headers, UPGRADE, "websocket")
        && header_has(headers, CONNECTION, "upgrade")
        && headers
            .get(SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13");
    let (Some(key), true, Some(upgrade)) = (key, is_ws, upgrade) else {
        let mut res = plain(
            StatusCode::UPGRADE_REQUIRED,
            serde_json::json!({"error": "websocket upgrade required"}),
        );
        res.headers_mut()
            .insert(UPGRADE, HeaderValue::from_static("websocket"));
        res.headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return res;
    };
    if shared.shutting_down() {
        shared.metrics.refused_total.fetch_add(1, Ordering::Relaxed);
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "shutting down"}),
        );
    }
    let handshake = read_handshake(headers, (!query.is_empty()).then_some(query));
    if handshake.offered_protocols && !handshake.offered_jsonrpc {
        return plain(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": format!("offer the {SUBPROTOCOL} subprotocol")}),
        );
    }
    let claims = match handshake.token.as_deref().map(|t| shared.auth.verify(t)) {
        Some(Ok(claims)) => claims,
        failure => {
            let reason = match failure {
                Some(Err(e)) => e.to_string(),
                _ => "missing token".to_string(),
            };
            shared
                .metrics
                .unauthorized_total
                .fetch_add(1, Ordering::Relaxed);
            // Anyone can send bad tokens: a flood must not flood the logs.
            static REFUSALS: crate::log_guard::Throttle = crate::log_guard::Throttle::new(10);
            if let Some(dropped) = REFUSALS.admit() {
                tracing::info!(%reason, similar_lines_dropped = dropped, "upgrade refused: 401");
            }
            let mut res = plain(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "unauthorized", "reason": reason}),
            );
            res.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            return res;
        }
    };
    let user_slot = match shared.user_connections.try_acquire(&claims.sub) {
        Ok(slot) => slot,
        Err(refused) => {
            shared.metrics.refused_total.fetch_add(1, Ordering::Relaxed);
            let (body, retry_after) = match refused {
                Refused::Full => (
                    serde_json::json!({
                        "error": "too many connections for this user",
                        "limit": shared.user_connections.max(),
                    }),
                    5,
                ),
                Refused::CoolingDown(left) => {
                    let secs = left.as_secs().max(1);
                    (
                        serde_json::json!({
                            "error": "a connection of this user was closed for abuse; wait before reconnecting",
                            "retry_after_secs": secs,
                        }),
                        secs,
                    )
                }
            };
            let mut res = plain(StatusCode::TOO_MANY_REQUESTS, body);
            res.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(retry_after));
            return res;
        }
    };
    let Some(slot) = shared.slots.try_acquire() else {
        shared.metrics.refused_total.fetch_add(1, Ordering::Relaxed);
        let mut res = plain(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "too many connections"}),
        );
        res.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
        return res;
    };
    shared
        .metrics
        .connections_total
        .fetch_add(1, Ordering::Relaxed);
    let peer = addr
        .map(|a| a.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let ip = shared
        .config
        .limits
        .trusted_proxies
        .client_ip(peer, headers);
    let config = websocket_config(shared.config.limits.max_message_bytes);
    let shared = shared.clone();
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                // The session gets a task of its own: awaited here, it would
                // sit beside this task's state (the upgrade, the claims) for
                // the socket's life, 224 bytes more per socket.
                tokio::spawn(session::run(
                    ws,
                    shared,
                    SessionInit {
                        claims,
                        ip,
                        slot,
                        user_slot,
                    },
                ));
            }
            Err(e) => tracing::debug!(cause = %e, "upgrade failed"),
        }
    });
    let mut res = Response::new(String::new().into());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(&key)) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if handshake.offered_jsonrpc {
        h.insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    res
}
