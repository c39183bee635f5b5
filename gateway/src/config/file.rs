//! The config file (`--config`, TOML or JSON by extension): `[limits]`,
//! `[jobs]` and `[services.<name>.methods.<method>]` with a JSON Schema and
//! defaults per method, applied on top of the defaults.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{validate_service_name, Config, ConfigError, MethodConfig, Rate, ServiceConfig};

/// The config file, as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Limits overriding the defaults.
    #[serde(default)]
    pub limits: FileLimits,
    /// Job policy overriding the defaults.
    #[serde(default)]
    pub jobs: FileJobs,
    /// Services and their methods.
    #[serde(default)]
    pub services: HashMap<String, FileService>,
}

/// `[limits]`.
#[allow(missing_docs)] // each field mirrors `Limits`, in seconds where it is a duration
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    pub max_message_bytes: Option<usize>,
    pub max_batch: Option<usize>,
    pub max_in_flight: Option<usize>,
    pub max_connections: Option<usize>,
    pub send_queue: Option<usize>,
    pub user_rate: Option<String>,
    pub ip_rate: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub rate_limit_close_after: Option<u32>,
    pub ping_interval_secs: Option<f64>,
    pub idle_timeout_secs: Option<f64>,
}

/// `[jobs]`.
#[allow(missing_docs)] // each field mirrors `JobPolicy`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileJobs {
    pub keep_completed_secs: Option<i64>,
    pub keep_failed_secs: Option<i64>,
    pub max_attempts: Option<i64>,
    pub max_delay_ms: Option<i64>,
    pub max_backoff_ms: Option<i64>,
    pub max_timeout_ms: Option<i64>,
}

/// `[services.<name>]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileService {
    /// `[services.<name>.methods.<method>]`; absent = any method.
    pub methods: Option<HashMap<String, FileMethod>>,
}

/// `[services.<name>.methods.<method>]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileMethod {
    /// A JSON Schema for `params`.
    pub schema: Option<Value>,
    /// Default timeout, ms.
    pub timeout_ms: Option<i64>,
    /// Default attempts.
    pub attempts: Option<i64>,
}

impl FileConfig {
    /// Reads a `.toml` or `.json` file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read(path.to_path_buf(), e.to_string()))?;
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            toml::from_str(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|e| ConfigError::Parse(path.to_path_buf(), e))
    }

    /// Applies the file on top of `config`.
    pub fn apply(self, config: &mut Config) -> Result<(), ConfigError> {
        let l = &mut config.limits;
        let f = self.limits;
        set(&mut l.max_message_bytes, f.max_message_bytes);
        set(&mut l.max_batch, f.max_batch);
        set(&mut l.max_in_flight, f.max_in_flight);
        set(&mut l.max_connections, f.max_connections);
        set(&mut l.send_queue, f.send_queue);
        set(&mut l.rate_limit_close_after, f.rate_limit_close_after);
        if let Some(r) = f.user_rate {
            l.user_rate = Rate::parse(&r).map_err(ConfigError::Invalid)?;
        }
        if let Some(r) = f.ip_rate {
            l.ip_rate = Rate::parse(&r).map_err(ConfigError::Invalid)?;
        }
        if let Some(list) = f.trusted_proxies {
            l.trusted_proxies =
                crate::client_ip::TrustedProxies::from_entries(list.iter().map(String::as_str))
                    .map_err(ConfigError::Invalid)?;
        }
        if let Some(s) = f.ping_interval_secs {
            l.ping_interval = secs(s)?;
        }
        if let Some(s) = f.idle_timeout_secs {
            l.idle_timeout = secs(s)?;
        }
        let j = &mut config.jobs;
        let f = self.jobs;
        set(&mut j.keep_completed_secs, f.keep_completed_secs);
        set(&mut j.keep_failed_secs, f.keep_failed_secs);
        set(&mut j.max_attempts, f.max_attempts);
        set(&mut j.max_delay_ms, f.max_delay_ms);
        set(&mut j.max_backoff_ms, f.max_backoff_ms);
        set(&mut j.max_timeout_ms, f.max_timeout_ms);
        for (name, svc) in self.services {
            validate_service_name(&name)?;
            let methods = match svc.methods {
                None => None,
                Some(ms) => {
                    let mut out = HashMap::new();
                    for (m, cfg) in ms {
                        out.insert(m.clone(), compile_method(&name, &m, cfg)?);
                    }
                    Some(out)
                }
            };
            config
                .services
                .0
                .insert(name, Arc::new(ServiceConfig { methods }));
        }
        Ok(())
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn secs(s: f64) -> Result<Duration, ConfigError> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| ConfigError::Invalid(format!("{s} is not a duration in seconds")))
}

fn compile_method(
    service: &str,
    method: &str,
    cfg: FileMethod,
) -> Result<MethodConfig, ConfigError> {
    if method.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "service {service}: empty method name"
        )));
    }
    let schema = match cfg.schema {
        None => None,
        Some(s) => Some(Arc::new(jsonschema::validator_for(&s).map_err(|e| {
            ConfigError::Invalid(format!("{service}.{method}: bad JSON Schema: {e}"))
        })?)),
    };
    Ok(MethodConfig {
        schema,
        timeout_ms: cfg.timeout_ms,
        attempts: cfg.attempts,
    })
}
