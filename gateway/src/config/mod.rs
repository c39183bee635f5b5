//! The gateway's configuration, validated once: defaults, then a config
//! file (TOML or JSON, by extension), then flags and environment (applied
//! by `cli.rs`). Tests build a [`Config`] directly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::AuthConfig;
pub use crate::client_ip::TrustedProxies;

mod file;

pub use file::{FileConfig, FileJobs, FileLimits, FileMethod, FileService};

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// `redis://` or `rediss://` URL.
    pub redis_url: String,
    /// BullMQ key prefix shared with workers (`bull`).
    pub prefix: String,
    /// TLS, or plain `ws://` when `None` (loopback tests, or behind a
    /// TLS-terminating proxy).
    pub tls: Option<TlsConfig>,
    /// How tokens are verified.
    pub auth: AuthConfig,
    /// The services (BullMQ queues) clients may call.
    pub services: Services,
    /// Per-socket and per-client limits.
    pub limits: Limits,
    /// What the gateway sets on the jobs it submits.
    pub jobs: JobPolicy,
    /// How job changes are noticed.
    pub notify: NotifyMode,
}

/// PEM certificate chain and private key.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// Private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key_pem: Vec<u8>,
}

impl TlsConfig {
    /// Reads both files.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, ConfigError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| ConfigError::Read(p.to_path_buf(), e.to_string()))
        };
        Ok(TlsConfig {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
        })
    }
}

/// How the notifier learns that a watched job changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum NotifyMode {
    /// Keyspace notifications when `CONFIG SET` is allowed, else events.
    #[default]
    Auto,
    /// Keyspace notifications on the watched job hashes only (fails to
    /// start when they cannot be enabled).
    Keyspace,
    /// One events-stream reader per served queue.
    Events,
}

/// Limits; each breach has its own error or close code.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest text frame answered normally; larger ones get -32002, and
    /// frames over twice this close the socket with 1009.
    pub max_message_bytes: usize,
    /// Most requests in one batch.
    pub max_batch: usize,
    /// Requests with an id waiting for a job's end, per connection.
    pub max_in_flight: usize,
    /// Open WebSocket connections; more get HTTP 503.
    pub max_connections: usize,
    /// Messages queued for a socket before the client counts as not
    /// reading and is cut off (close 4001).
    pub send_queue: usize,
    /// Requests per second and burst per user (`sub`); rate 0 = no limit.
    pub user_rate: Rate,
    /// Requests per second and burst per client IP; rate 0 = no limit.
    pub ip_rate: Rate,
    /// Proxies whose `X-Forwarded-For` names the client IP (none by default).
    pub trusted_proxies: TrustedProxies,
    /// Rate-limited requests in a row before the socket is closed (4429); 0 = never.
    pub rate_limit_close_after: u32,
    /// How often the server pings.
    pub ping_interval: Duration,
    /// A socket silent this long (no frame, no pong) is closed (4000).
    pub idle_timeout: Duration,
    /// How long shutdown waits for sockets to close.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 * 1024,
            max_batch: 100,
            max_in_flight: 256,
            max_connections: 100_000,
            send_queue: 1024,
            user_rate: Rate {
                per_second: 200.0,
                burst: 400.0,
            },
            ip_rate: Rate {
                per_second: 1000.0,
                burst: 2000.0,
            },
            trusted_proxies: TrustedProxies::default(),
            rate_limit_close_after: 1000,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// A token bucket's refill rate and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second; 0 disables the limit.
    pub per_second: f64,
    /// Bucket size.
    pub burst: f64,
}

impl Rate {
    /// Parses `RATE` or `RATE/BURST` (burst defaults to twice the rate).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (rate, burst) = match s.split_once('/') {
            Some((r, b)) => (r, Some(b)),
            None => (s, None),
        };
        let per_second: f64 = rate
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: expected RATE or RATE/BURST"))?;
        let burst: f64 = match burst {
            Some(b) => b.trim().parse().map_err(|_| format!("{s:?}: bad burst"))?,
            None => per_second * 2.0,
        };
        if !(per_second >= 0.0 && burst >= 1.0 || per_second == 0.0) {
            return Err(format!("{s:?}: rate must be >= 0 and burst >= 1"));
        }
        Ok(Rate { per_second, burst })
    }
}

/// Retention and clamps for submitted jobs.
#[derive(Debug, Clone)]
pub struct JobPolicy {
    /// `removeOnComplete: {age}` in seconds: results stay this long for
    /// re-attach and `rpc.status`.
    pub keep_completed_secs: i64,
    /// `removeOnFail: {age}` in seconds.
    pub keep_failed_secs: i64,
    /// Highest `attempts` a client may ask for.
    pub max_attempts: i64,
    /// Longest `delay`, ms.
    pub max_delay_ms: i64,
    /// Longest backoff delay, ms.
    pub max_backoff_ms: i64,
    /// Longest `timeout`, ms.
    pub max_timeout_ms: i64,
}

impl Default for JobPolicy {
    fn default() -> Self {
        JobPolicy {
            keep_completed_secs: 3600,
            keep_failed_secs: 3600,
            max_attempts: 25,
            max_delay_ms: 7 * 24 * 3600 * 1000,
            max_backoff_ms: 3600 * 1000,
            max_timeout_ms: 24 * 3600 * 1000,
        }
    }
}

/// Services by name.
#[derive(Debug, Clone, Default)]
pub struct Services(pub HashMap<String, Arc<ServiceConfig>>);

/// One service (a BullMQ queue).
#[derive(Debug, Clone, Default)]
pub struct ServiceConfig {
    /// The allowed methods; `None` allows any method name.
    pub methods: Option<HashMap<String, MethodConfig>>,
}

/// One method's rules.
#[derive(Clone, Default)]
pub struct MethodConfig {
    /// The params must validate against this JSON Schema.
    pub schema: Option<Arc<jsonschema::Validator>>,
    /// Default `timeout` (ms) when the client sets none.
    pub timeout_ms: Option<i64>,
    /// Default `attempts` when the client sets none.
    pub attempts: Option<i64>,
}

impl std::fmt::Debug for MethodConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodConfig")
            .field("schema", &self.schema.is_some())
            .field("timeout_ms", &self.timeout_ms)
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// A configuration problem, found at startup.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, String),
    /// The config file does not parse.
    #[error("config file {0}: {1}")]
    Parse(PathBuf, String),
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Services {
    /// Adds services from a comma-separated list (`SERVICES`), each
    /// allowing any method unless the config file lists its methods.
    pub fn add_list(&mut self, list: &str) -> Result<(), ConfigError> {
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            validate_service_name(name)?;
            self.0.entry(name.to_string()).or_default();
        }
        Ok(())
    }

    /// The service and method config of `service.method`, if allowed.
    pub fn lookup(
        &self,
        service: &str,
        method: &str,
    ) -> Option<(&Arc<ServiceConfig>, Option<&MethodConfig>)> {
        let svc = self.0.get(service)?;
        match &svc.methods {
            None => Some((svc, None)),
            Some(methods) => methods.get(method).map(|m| (svc, Some(m))),
        }
    }

    /// Service names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0.keys().cloned().collect();
        names.sort();
        names
    }
}

/// Service names become queue names and the first part of job ids.
pub fn validate_service_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name != "rpc"
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!(
            "service name {name:?}: use 1-64 letters, digits, '-' or '_' ('rpc' is reserved)"
        )))
    }
}

impl Config {
    /// A configuration with defaults: plain `ws://` on `127.0.0.1:0`, no
    /// services, the given Redis and token verification.
    pub fn new(redis_url: impl Into<String>, auth: AuthConfig) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            redis_url: redis_url.into(),
            prefix: bullmq_wire::DEFAULT_PREFIX.to_string(),
            tls: None,
            auth,
            services: Services::default(),
            limits: Limits::default(),
            jobs: JobPolicy::default(),
            notify: NotifyMode::Auto,
        }
    }

    /// Checks what cannot be checked field by field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let bad = |what: &str| Err(ConfigError::Invalid(what.to_string()));
        if l.max_message_bytes < 256 {
            return bad("max_message_bytes must be at least 256");
        }
        if l.max_batch == 0 || l.max_in_flight == 0 || l.max_connections == 0 || l.send_queue < 4 {
            return bad("max_batch, max_in_flight and max_connections must be positive, send_queue at least 4");
        }
        if l.ping_interval.is_zero() || l.idle_timeout <= l.ping_interval {
            return bad("idle_timeout must be longer than ping_interval (and both positive)");
        }
        if self.services.0.is_empty() {
            return bad("no services: set SERVICES / --services or [services] in the config file");
        }
        if self.jobs.keep_completed_secs <= 0 || self.jobs.keep_failed_secs <= 0 {
            return bad("keep_completed_secs and keep_failed_secs must be positive (results must survive for re-attach)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::new("redis://127.0.0.1:1", AuthConfig::hs256(b"secret".to_vec()))
    }

    #[test]
    fn parses_rates() {
        assert_eq!(
            Rate::parse("10").unwrap(),
            Rate {
                per_second: 10.0,
                burst: 20.0
            }
        );
        assert_eq!(
            Rate::parse("10/3").unwrap(),
            Rate {
                per_second: 10.0,
                burst: 3.0
            }
        );
        assert_eq!(Rate::parse("0").unwrap().per_second, 0.0);
        assert!(Rate::parse("x").is_err());
        assert!(Rate::parse("5/0").is_err());
    }

    #[test]
    fn services_from_list_and_file() {
        let mut c = cfg();
        c.services.add_list("demo, data ,").unwrap();
        assert!(c.services.add_list("a.b").is_err());
        assert!(c.services.add_list("rpc").is_err());
        let file: FileConfig = toml::from_str(
            r#"
            [limits]
            max_in_flight = 7
            user_rate = "5/10"
            [jobs]
            keep_completed_secs = 60
            [services.analysis.methods.runModel]
            schema = { type = "object", required = ["data"] }
            timeout_ms = 1000
            "#,
        )
        .unwrap();
        file.apply(&mut c).unwrap();
        assert_eq!(c.limits.max_in_flight, 7);
        assert_eq!(c.limits.user_rate.burst, 10.0);
        assert_eq!(c.jobs.keep_completed_secs, 60);
        assert!(c.services.lookup("demo", "anything").is_some());
        let (_, m) = c.services.lookup("analysis", "runModel").unwrap();
        let m = m.unwrap();
        assert!(m
            .schema
            .as_ref()
            .unwrap()
            .is_valid(&serde_json::json!({"data": 1})));
        assert!(!m.schema.as_ref().unwrap().is_valid(&serde_json::json!({})));
        assert!(c.services.lookup("analysis", "other").is_none());
        assert!(c.services.lookup("nope", "x").is_none());
        c.validate().unwrap();
    }

    #[test]
    fn rejects_bad_files() {
        assert!(toml::from_str::<FileConfig>("[limits]\nbogus = 1").is_err());
        let file: FileConfig =
            serde_json::from_str(r#"{"services":{"s":{"methods":{"m":{"schema":{"type":12}}}}}}"#)
                .unwrap();
        assert!(file.apply(&mut cfg()).is_err());
        assert!(cfg().validate().is_err(), "no services");
    }
}
