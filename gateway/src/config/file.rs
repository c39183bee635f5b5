//! The config file (`--config`, TOML or JSON by extension): one section
//! per settings group (`[server]`, `[redis]`, `[auth]`, `[limits]`,
//! `[jobs]`; keys in the README's table) and `[services.<name>.methods.<method>]`
//! with a JSON Schema and defaults per method.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    validate_service_name, ConfigError, MethodConfig, ServiceConfig, Services, SettingsArgs,
    SECTIONS,
};

/// The config file, as written.
#[derive(Debug, Default)]
pub struct FileConfig {
    /// The file's layer of settings.
    pub settings: SettingsArgs,
    /// Services and their methods.
    pub services: HashMap<String, FileService>,
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
            Self::from_json(&text)
        } else {
            Self::from_toml(&text)
        };
        parsed.map_err(|e| ConfigError::Parse(path.to_path_buf(), e))
    }

    /// Reads TOML text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let root: Map<String, Value> = toml::from_str(text).map_err(|e| e.to_string())?;
        Self::from_root(root)
    }

    /// Reads JSON text.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let root: Map<String, Value> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Self::from_root(root)
    }

    /// Reads a file already parsed (a JSON object).
    pub fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Object(root) => Self::from_root(root),
            other => Err(format!("expected a table, not {other}")),
        }
    }

    fn from_root(mut root: Map<String, Value>) -> Result<Self, String> {
        let services = match root.remove("services") {
            None => HashMap::new(),
            Some(v) => serde_json::from_value(v).map_err(|e| format!("[services]: {e}"))?,
        };
        if let Some(other) = root.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
            return Err(format!(
                "unknown section [{other}] (expected {}, or services)",
                SECTIONS.join(", ")
            ));
        }
        Ok(FileConfig {
            settings: SettingsArgs::from_file(&root)?,
            services,
        })
    }

    /// Adds the file's services, compiling each method's schema.
    pub fn add_services(
        services: HashMap<String, FileService>,
        to: &mut Services,
    ) -> Result<(), ConfigError> {
        for (name, svc) in services {
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
            to.0.insert(name, Arc::new(ServiceConfig { methods }));
        }
        Ok(())
    }
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
