//! JWT verification and where the token comes from.
//!
//! HS256 with a shared secret, or RS256 / ES256 / EdDSA with a PEM public
//! key (the algorithm follows the key unless configured). Exactly one
//! algorithm is accepted, so `alg: none` and algorithm confusion (an HS256
//! token "signed" with the public key) fail. `exp` and `sub` are required;
//! `iss` and `aud` are required and checked when configured, and `nbf` is
//! honoured when present. Tokens are never logged:
//! errors name what is wrong, never the token.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

mod handshake;

pub use handshake::{read_handshake, Handshake, SUBPROTOCOL};

/// The verification key.
#[derive(Clone)]
pub enum JwtKey {
    /// A shared secret (HS256/384/512).
    Secret(Vec<u8>),
    /// A PEM public key (RSA, EC or Ed25519).
    PublicPem(Vec<u8>),
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JwtKey::Secret(_) => "Secret(..)",
            JwtKey::PublicPem(_) => "PublicPem(..)",
        })
    }
}

/// How tokens are verified.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The key.
    pub key: JwtKey,
    /// The one accepted algorithm; `None` picks it from the key (HS256,
    /// RS256, ES256 or EdDSA).
    pub algorithm: Option<Algorithm>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp`/`nbf`, seconds.
    pub leeway_secs: u64,
    /// Longer tokens are refused before any decoding.
    pub max_token_bytes: usize,
}

/// The default of [`AuthConfig::max_token_bytes`]: far above what a token
/// of a few claims signed with RSA-4096 takes (~1.2 KB).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

impl AuthConfig {
    /// HS256 with `secret`.
    pub fn hs256(secret: Vec<u8>) -> Self {
        AuthConfig {
            key: JwtKey::Secret(secret),
            algorithm: None,
            issuer: None,
            audience: None,
            leeway_secs: 30,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    /// A PEM public key; the algorithm follows the key type.
    pub fn public_key_pem(pem: Vec<u8>) -> Self {
        AuthConfig {
            key: JwtKey::PublicPem(pem),
            algorithm: None,
            issuer: None,
            audience: None,
            leeway_secs: 30,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }
}

/// Why a token was refused (the message never contains the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token in the query, the Authorization header or the subprotocols.
    #[error("missing token")]
    Missing,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Not the configured algorithm (includes `none`).
    #[error("algorithm not accepted")]
    WrongAlgorithm,
    /// Anything else: not a JWT, missing `exp`/`sub`, wrong `iss`/`aud`.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// Longer than `max_token_bytes`.
    #[error("token too large: {size} bytes, the maximum is {max}")]
    TooLarge {
        /// The token's length.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The configured key cannot be used.
    #[error("unusable key: {0}")]
    Key(String),
}

/// What the gateway keeps from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

#[derive(Deserialize)]
struct RawClaims {
    sub: Option<serde_json::Value>,
    exp: u64,
}

/// Verifies tokens with one key and one algorithm.
#[derive(Clone)]
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
    leeway_secs: u64,
    max_token_bytes: usize,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Builds the verifier; fails on an unusable key or an algorithm that
    /// does not fit it.
    pub fn new(config: &AuthConfig) -> Result<Self, AuthError> {
        let key_err = |e: jsonwebtoken::errors::Error| AuthError::Key(e.to_string());
        let (key, default_alg) = match &config.key {
            JwtKey::Secret(s) if s.is_empty() => {
                return Err(AuthError::Key("the secret is empty".into()))
            }
            JwtKey::Secret(s) => (DecodingKey::from_secret(s), Algorithm::HS256),
            JwtKey::PublicPem(pem) => {
                if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
                    (k, Algorithm::RS256)
                } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
                    (k, Algorithm::ES256)
                } else {
                    (
                        DecodingKey::from_ed_pem(pem).map_err(key_err)?,
                        Algorithm::EdDSA,
                    )
                }
            }
        };
        let alg = config.algorithm.unwrap_or(default_alg);
        let family_ok = match (&config.key, alg) {
            (JwtKey::Secret(_), Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) => true,
            (JwtKey::PublicPem(_), a) => match default_alg {
                Algorithm::RS256 => matches!(
                    a,
                    Algorithm::RS256
                        | Algorithm::RS384
                        | Algorithm::RS512
                        | Algorithm::PS256
                        | Algorithm::PS384
                        | Algorithm::PS512
                ),
                Algorithm::ES256 => matches!(a, Algorithm::ES256 | Algorithm::ES384),
                _ => a == Algorithm::EdDSA,
            },
            _ => false,
        };
        if !family_ok {
            return Err(AuthError::Key(format!(
                "algorithm {alg:?} does not fit the configured key"
            )));
        }
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.leeway = config.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // A configured issuer or audience is required, not only checked
        // when the token happens to carry the claim.
        let mut required = vec!["exp", "sub"];
        required.extend(config.issuer.as_ref().map(|_| "iss"));
        required.extend(config.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        match &config.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &config.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Authenticator {
            key,
            validation,
            leeway_secs: config.leeway_secs,
            max_token_bytes: config.max_token_bytes,
        })
    }

    /// Verifies a token.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        use jsonwebtoken::errors::ErrorKind as K;
        if token.len() > self.max_token_bytes {
            return Err(AuthError::TooLarge {
                size: token.len(),
                max: self.max_token_bytes,
            });
        }
        let data =
            jsonwebtoken::decode::<RawClaims>(token, &self.key, &self.validation).map_err(|e| {
                match e.kind() {
                    K::ExpiredSignature => AuthError::Expired,
                    K::InvalidSignature => AuthError::BadSignature,
                    K::InvalidAlgorithm | K::InvalidAlgorithmName => AuthError::WrongAlgorithm,
                    K::MissingRequiredClaim(c) => AuthError::Invalid(format!("missing claim {c}")),
                    K::InvalidIssuer => AuthError::Invalid("wrong issuer".into()),
                    K::InvalidAudience => AuthError::Invalid("wrong audience".into()),
                    K::ImmatureSignature => AuthError::Invalid("not valid yet (nbf)".into()),
                    K::Json(_) => {
                        AuthError::Invalid("claims are not valid JSON of the expected types".into())
                    }
                    _ => AuthError::Invalid("not a well-formed JWT".into()),
                }
            })?;
        let sub = match data.claims.sub {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s,
            _ => return Err(AuthError::Invalid("sub must be a non-empty string".into())),
        };
        Ok(Claims {
            sub,
            exp: data.claims.exp,
        })
    }

    /// When a connection authenticated with `claims` must be closed: `exp`
    /// plus the leeway, seconds since the epoch.
    pub fn deadline(&self, claims: &Claims) -> u64 {
        claims.exp.saturating_add(self.leeway_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn hs(claims: serde_json::Value, secret: &[u8]) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    #[test]
    fn hs256_accepts_valid_and_names_each_failure() {
        let a = Authenticator::new(&AuthConfig::hs256(b"s3cret".to_vec())).unwrap();
        let ok = hs(json!({"sub": "alice", "exp": now() + 60}), b"s3cret");
        assert_eq!(a.verify(&ok).unwrap().sub, "alice");
        assert_eq!(
            a.verify(&hs(json!({"sub": "a", "exp": now() - 120}), b"s3cret")),
            Err(AuthError::Expired)
        );
        assert_eq!(
            a.verify(&hs(json!({"sub": "a", "exp": now() + 60}), b"other")),
            Err(AuthError::BadSignature)
        );
        assert!(matches!(
            a.verify(&hs(json!({"sub": "a"}), b"s3cret")),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            a.verify(&hs(json!({"exp": now() + 60}), b"s3cret")),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            a.verify(&hs(json!({"sub": 5, "exp": now() + 60}), b"s3cret")),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(a.verify("not.a.jwt"), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn alg_none_is_rejected() {
        use base64::Engine as _;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let a = Authenticator::new(&AuthConfig::hs256(b"k".to_vec())).unwrap();
        let token = format!(
            "{}.{}.",
            b64(json!({"alg": "none", "typ": "JWT"})),
            b64(json!({"sub": "a", "exp": now() + 60}))
        );
        assert!(a.verify(&token).is_err());
    }

    #[test]
    fn other_hs_algorithms_are_refused_when_hs256_is_configured() {
        let a = Authenticator::new(&AuthConfig::hs256(b"k".to_vec())).unwrap();
        let t = encode(
            &Header::new(Algorithm::HS512),
            &json!({"sub": "a", "exp": now() + 60}),
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert_eq!(a.verify(&t), Err(AuthError::WrongAlgorithm));
    }

    #[test]
    fn issuer_and_audience_when_configured() {
        let mut cfg = AuthConfig::hs256(b"k".to_vec());
        cfg.issuer = Some("me".into());
        cfg.audience = Some("gw".into());
        let a = Authenticator::new(&cfg).unwrap();
        let good = hs(
            json!({"sub": "a", "exp": now() + 60, "iss": "me", "aud": "gw"}),
            b"k",
        );
        assert!(a.verify(&good).is_ok());
        assert!(a
            .verify(&hs(
                json!({"sub": "a", "exp": now() + 60, "iss": "x", "aud": "gw"}),
                b"k"
            ))
            .is_err());
        assert!(a
            .verify(&hs(
                json!({"sub": "a", "exp": now() + 60, "iss": "me", "aud": "x"}),
                b"k"
            ))
            .is_err());
        // A configured claim is required: a token without it is refused.
        assert_eq!(
            a.verify(&hs(
                json!({"sub": "a", "exp": now() + 60, "aud": "gw"}),
                b"k"
            )),
            Err(AuthError::Invalid("missing claim iss".into()))
        );
        assert_eq!(
            a.verify(&hs(
                json!({"sub": "a", "exp": now() + 60, "iss": "me"}),
                b"k"
            )),
            Err(AuthError::Invalid("missing claim aud".into()))
        );
        // Without a configured audience, a token's aud is not an error.
        let plain = Authenticator::new(&AuthConfig::hs256(b"k".to_vec())).unwrap();
        assert!(plain.verify(&good).is_ok());
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let a = Authenticator::new(&AuthConfig::hs256(b"k".to_vec())).unwrap();
        let early = hs(
            json!({"sub": "a", "exp": now() + 7200, "nbf": now() + 3600}),
            b"k",
        );
        assert_eq!(
            a.verify(&early),
            Err(AuthError::Invalid("not valid yet (nbf)".into()))
        );
        let started = hs(
            json!({"sub": "a", "exp": now() + 60, "nbf": now() - 5}),
            b"k",
        );
        assert!(a.verify(&started).is_ok());
    }

    #[test]
    fn a_validly_signed_token_over_the_cap_is_refused_unread() {
        let mut config = AuthConfig::hs256(b"k".to_vec());
        config.max_token_bytes = 1024;
        let a = Authenticator::new(&config).unwrap();
        let big = hs(json!({"sub": "a".repeat(2000), "exp": now() + 60}), b"k");
        assert_eq!(
            a.verify(&big),
            Err(AuthError::TooLarge {
                size: big.len(),
                max: 1024
            })
        );
        let small = hs(json!({"sub": "a".repeat(500), "exp": now() + 60}), b"k");
        assert!(a.verify(&small).is_ok());
    }

    #[test]
    fn a_far_expiry_saturates_the_deadline() {
        let a = Authenticator::new(&AuthConfig::hs256(b"k".to_vec())).unwrap();
        let far = hs(json!({"sub": "a", "exp": u64::MAX - 1}), b"k");
        let claims = a.verify(&far).unwrap();
        assert_eq!(a.deadline(&claims), u64::MAX);
    }

    #[test]
    fn algorithm_must_fit_the_key() {
        let mut cfg = AuthConfig::hs256(b"k".to_vec());
        cfg.algorithm = Some(Algorithm::RS256);
        assert!(Authenticator::new(&cfg).is_err());
        assert!(Authenticator::new(&AuthConfig::hs256(Vec::new())).is_err());
        assert!(Authenticator::new(&AuthConfig::public_key_pem(b"junk".to_vec())).is_err());
    }
}
