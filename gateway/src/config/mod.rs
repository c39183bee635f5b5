//! The gateway's configuration, validated once. Every setting is defined
//! once in `settings.rs` (field, default, file key, flag, environment
//! variable) and layered: defaults < config file (TOML or JSON, by
//! extension) < environment < flags; `cli.rs` in the binary resolves the
//! layers into a [`Config`]. Tests build a [`Config`] directly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::auth::AuthConfig;
pub use crate::client_ip::TrustedProxies;

mod define;
mod file;
mod settings;
mod value;

pub use define::Setting;
pub use file::{FileConfig, FileMethod, FileService};
pub use settings::{
    AuthArgs, AuthSettings, JobArgs, JobPolicy, Limits, LimitsArgs, MetricsArgs, MetricsSettings,
    RedisArgs, RedisSettings, ServerArgs, ServerSettings, Settings, SettingsArgs, SECTIONS,
    SETTINGS,
};
pub use value::SettingValue;

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
    /// What `/metrics` shows, where, and to whom.
    pub metrics: MetricsSettings,
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
    /// Only the `job:{jobId}` channel, where workers publish progress and
    /// ends themselves (`worker --publish-results`, on by default, and
    /// `--dev`): one subscription per watched job and no keyspace
    /// notifications. Only for queues whose every worker publishes: a
    /// Node or Python BullMQ worker does not, and its calls would never
    /// be answered.
    Published,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
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
            metrics: MetricsSettings::default(),
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
        if l.send_queue_bytes == 0 || l.max_connections_per_user == 0 {
            return bad("send_queue_bytes and max_connections_per_user must be positive");
        }
        if l.write_stall_timeout.is_zero() || l.close_grace.is_zero() {
            return bad("write_stall_timeout and close_grace must be positive");
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
        let file = FileConfig::from_toml(
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
        let mut settings = Settings::default();
        file.settings.apply(&mut settings);
        c.limits = settings.limits;
        c.jobs = settings.jobs;
        FileConfig::add_services(file.services, &mut c.services).unwrap();
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
        assert!(FileConfig::from_toml("[limits]\nbogus = 1").is_err());
        assert!(FileConfig::from_toml("[limits]\nmax_batch = -1").is_err());
        assert!(FileConfig::from_toml("[nope]\nx = 1").is_err());
        assert!(FileConfig::from_toml("limits = 3").is_err());
        let file =
            FileConfig::from_json(r#"{"services":{"s":{"methods":{"m":{"schema":{"type":12}}}}}}"#)
                .unwrap();
        assert!(FileConfig::add_services(file.services, &mut cfg().services).is_err());
        assert!(cfg().validate().is_err(), "no services");
    }
}
