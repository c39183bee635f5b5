//! `rpc.auth {token}`: refreshes the token of a live connection before it
//! expires. The new token must verify and name the same user (`sub`); the
//! connection's deadline moves to the new expiry.

use serde_json::{json, Value};

use super::BuiltIn;
use crate::auth::{Authenticator, Claims};
use crate::protocol::{Request, RpcError};
use crate::session::Call;

/// `rpc.auth`.
pub(crate) const METHOD: BuiltIn = BuiltIn {
    name: "rpc.auth",
    handle,
};

fn handle(mut call: Call<'_>, req: Request) {
    let shared = call.shared();
    let result =
        refresh(&shared.auth, call.sub(), req.params_value().as_ref()).map(|(claims, deadline)| {
            call.set_deadline(deadline);
            answer(&claims)
        });
    call.answer(None, result);
}

/// Verifies the new token for the connection of `current_sub`; returns the
/// claims and the new deadline (seconds since the epoch).
pub fn refresh(
    auth: &Authenticator,
    current_sub: &str,
    params: Option<&Value>,
) -> Result<(Claims, u64), RpcError> {
    let token = match params {
        Some(Value::Object(m)) => m.get("token"),
        Some(Value::Array(a)) => a.first(),
        _ => None,
    }
    .and_then(Value::as_str)
    .ok_or_else(|| RpcError::invalid_params("expected {\"token\": string}"))?;
    let claims = auth.verify(token).map_err(RpcError::unauthorized)?;
    if claims.sub != current_sub {
        return Err(RpcError::unauthorized("the token is for another user"));
    }
    let deadline = auth.deadline(&claims);
    Ok((claims, deadline))
}

/// The success answer.
pub fn answer(claims: &Claims) -> Value {
    json!({ "sub": claims.sub, "exp": claims.exp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthConfig;
    use jsonwebtoken::{encode, EncodingKey, Header};

    #[test]
    fn refresh_requires_a_valid_token_for_the_same_user() {
        let auth = Authenticator::new(&AuthConfig::hs256(b"k".to_vec())).unwrap();
        let exp = jsonwebtoken::get_current_timestamp() + 600;
        let token = |sub: &str| {
            encode(
                &Header::default(),
                &json!({"sub": sub, "exp": exp}),
                &EncodingKey::from_secret(b"k"),
            )
            .unwrap()
        };
        let (claims, deadline) = refresh(&auth, "a", Some(&json!({"token": token("a")}))).unwrap();
        assert_eq!(claims.exp, exp);
        assert!(deadline >= exp);
        assert_eq!(
            refresh(&auth, "a", Some(&json!({"token": token("b")})))
                .unwrap_err()
                .code,
            -32000
        );
        assert_eq!(
            refresh(&auth, "a", Some(&json!({"token": "x"})))
                .unwrap_err()
                .code,
            -32000
        );
        assert_eq!(refresh(&auth, "a", None).unwrap_err().code, -32602);
    }
}
