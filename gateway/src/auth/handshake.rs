//! Where the token comes from in an upgrade request: `Authorization:
//! Bearer`, `?token=`, or a `bearer.<jwt>` subprotocol offered next to
//! `jsonrpc.v1` (browsers cannot set headers on a WebSocket).

use http::HeaderMap;

/// The subprotocol the gateway speaks (and the only one it echoes).
pub const SUBPROTOCOL: &str = "jsonrpc.v1";

/// What the upgrade request carries.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Handshake {
    /// The token, from the first place that has one: `Authorization:
    /// Bearer`, `?token=`, then a `bearer.<jwt>` subprotocol.
    pub token: Option<String>,
    /// Whether any subprotocol was offered.
    pub offered_protocols: bool,
    /// Whether `jsonrpc.v1` was offered (then it is echoed).
    pub offered_jsonrpc: bool,
}

/// Reads the token and subprotocols of an upgrade request.
pub fn read_handshake(headers: &HeaderMap, query: Option<&str>) -> Handshake {
    let mut h = Handshake::default();
    let mut protocol_token = None;
    for value in headers.get_all(http::header::SEC_WEBSOCKET_PROTOCOL) {
        let Ok(value) = value.to_str() else { continue };
        for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            h.offered_protocols = true;
            if p == SUBPROTOCOL {
                h.offered_jsonrpc = true;
            } else if let Some(t) = p.strip_prefix("bearer.") {
                protocol_token.get_or_insert_with(|| t.to_string());
            }
        }
    }
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    let from_query = query.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(percent_decode)
            .filter(|t| !t.is_empty())
    });
    h.token = bearer.or(from_query).or(protocol_token);
    h
}

/// Decodes `%XX` escapes and `+` (tokens are URL-safe, but clients may
/// escape them anyway).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_token_from_each_place() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            read_handshake(&headers, Some("token=q%2Eq"))
                .token
                .as_deref(),
            Some("q.q")
        );
        headers.insert(
            "sec-websocket-protocol",
            "bearer.p.p.p, jsonrpc.v1".parse().unwrap(),
        );
        let h = read_handshake(&headers, None);
        assert_eq!(h.token.as_deref(), Some("p.p.p"));
        assert!(h.offered_jsonrpc && h.offered_protocols);
        headers.insert("authorization", "Bearer h.h.h".parse().unwrap());
        assert_eq!(
            read_handshake(&headers, Some("token=q")).token.as_deref(),
            Some("h.h.h")
        );
        assert_eq!(
            read_handshake(&HeaderMap::new(), Some("a=1&token=")).token,
            None
        );
        assert_eq!(percent_decode("a%zz%4"), "a%zz%4");
    }
}
