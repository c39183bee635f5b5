//! Tokens: checked before the upgrade (HTTP 401), taken from the query,
//! the Authorization header or the subprotocols, refreshed with
//! `rpc.auth`, and enforced at expiry.

use base64::Engine as _;
use gateway::auth::AuthConfig;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::support::{now, token, Client, Env, Gw, Stack, SECRET};

fn b64(v: serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

async fn refused(gw: &Gw, token: &str) -> (u16, String) {
    match Client::connect(&gw.url(token)).await {
        Ok(_) => panic!("connected with a bad token"),
        Err(r) => (r.status, r.body),
    }
}

/// Missing, malformed, expired, wrongly signed, `alg: none` and other-
/// algorithm tokens all get 401 before any upgrade.
#[tokio::test]
async fn bad_tokens_get_401() {
    let s = Stack::without_worker(|_| {}).await;
    let exp = now() + 600;
    let cases = [
        ("missing", String::new()),
        ("malformed", "abc.def".to_string()),
        ("expired", token("alice", -600)),
        (
            "wrong signature",
            encode(
                &Header::default(),
                &json!({"sub": "alice", "exp": exp}),
                &EncodingKey::from_secret(b"other"),
            )
            .unwrap(),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(json!({"alg": "none", "typ": "JWT"})),
                b64(json!({"sub": "alice", "exp": exp}))
            ),
        ),
        (
            "HS512",
            encode(
                &Header::new(Algorithm::HS512),
                &json!({"sub": "alice", "exp": exp}),
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap(),
        ),
        (
            "no sub",
            encode(
                &Header::default(),
                &json!({"exp": exp}),
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap(),
        ),
    ];
    for (what, t) in cases {
        let (status, body) = refused(&s.gw, &t).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(
            !body.contains(&t) || t.is_empty(),
            "the token is never echoed"
        );
    }
    let (status, body) = refused(&s.gw, &token("alice", -600)).await;
    assert_eq!(status, 401);
    assert!(body.contains("expired"), "{body}");
}

/// The token may come in an `Authorization: Bearer` header, or as a
/// `bearer.<jwt>` subprotocol next to `jsonrpc.v1`, which alone is echoed.
#[tokio::test]
async fn token_from_header_or_subprotocol() {
    let s = Stack::start().await;
    let url = format!("ws://{}/ws", s.gw.addr);
    let t = token("alice", 600);
    let mut c = Client::connect_with(&url, &[("authorization", &format!("Bearer {t}"))])
        .await
        .unwrap();
    assert_eq!(
        c.call(1, "demo.echo", json!({"h": 1})).await["result"],
        json!({"h": 1})
    );
    let protocols = format!("bearer.{t}, jsonrpc.v1");
    let mut c = Client::connect_with(&url, &[("sec-websocket-protocol", &protocols)])
        .await
        .unwrap();
    assert_eq!(c.protocol.as_deref(), Some("jsonrpc.v1"));
    assert_eq!(
        c.call(1, "demo.echo", json!({"p": 1})).await["result"],
        json!({"p": 1})
    );
    let only_bearer = format!("bearer.{t}");
    let r = Client::connect_with(&url, &[("sec-websocket-protocol", &only_bearer)]).await;
    assert_eq!(
        r.err().map(|r| r.status),
        Some(400),
        "jsonrpc.v1 must be offered with subprotocols"
    );
}

/// ES256 and EdDSA public keys; an HS256 token "signed" with the public
/// key (algorithm confusion) is refused.
#[tokio::test]
async fn public_key_algorithms() {
    let env = Env::new();
    for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ED25519] {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let public = key.public_key_pem();
        let mut config = env.config();
        config.auth = AuthConfig::public_key_pem(public.clone().into_bytes());
        let gw = Gw::start(config).await;
        let claims = json!({"sub": "alice", "exp": now() + 600});
        let private = key.serialize_pem();
        let good = if alg == &rcgen::PKCS_ED25519 {
            encode(
                &Header::new(Algorithm::EdDSA),
                &claims,
                &EncodingKey::from_ed_pem(private.as_bytes()).unwrap(),
            )
        } else {
            encode(
                &Header::new(Algorithm::ES256),
                &claims,
                &EncodingKey::from_ec_pem(private.as_bytes()).unwrap(),
            )
        }
        .unwrap();
        let mut c = Client::connect(&gw.url(&good)).await.unwrap();
        assert_eq!(
            c.call(1, "rpc.status", json!({"jobId": "x"})).await["error"]["code"],
            -32003
        );
        let confused = encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        assert_eq!(refused(&gw, &confused).await.0, 401);
        gw.shutdown().await;
    }
}

/// `rpc.auth` extends a connection past its first token's expiry; a token
/// for another user is refused.
#[tokio::test]
async fn rpc_auth_refreshes_the_token() {
    let s = Stack::start_with(|c| c.auth.leeway_secs = 0).await;
    let mut c = Client::connect(&s.gw.url(&token("alice", 2)))
        .await
        .unwrap();
    let r = c
        .call(1, "rpc.auth", json!({"token": token("bob", 600)}))
        .await;
    assert_eq!(r["error"]["code"], -32000, "{r}");
    let r = c
        .call(2, "rpc.auth", json!({"token": token("alice", 600)}))
        .await;
    assert_eq!(r["result"]["sub"], "alice", "{r}");
    // A job that outlives the first token's expiry still answers.
    let r = c
        .call(3, "demo.sleep", json!({"ms": 3500, "steps": 1}))
        .await;
    assert_eq!(r["result"], json!({"slept": 3500}));
}

/// Without a refresh, the socket is closed with 4401 when the token expires.
#[tokio::test]
async fn expiry_closes_with_4401() {
    let s = Stack::without_worker(|c| c.auth.leeway_secs = 0).await;
    let mut c = Client::connect(&s.gw.url(&token("alice", 2)))
        .await
        .unwrap();
    assert_eq!(c.closed().await, 4401);
}
