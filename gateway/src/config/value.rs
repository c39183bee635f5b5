//! How a setting's value is read from text (a flag, an environment
//! variable) or from the config file, and shown as a default. Every value
//! goes through [`SettingValue::parse_text`], so a flag, its environment
//! variable and its file key accept the same spellings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::{LogFormat, NotifyMode, Rate, TrustedProxies};

/// A type a setting can hold.
pub trait SettingValue: Sized + Clone + Send + Sync + 'static {
    /// Reads a flag's or an environment variable's text.
    fn parse_text(text: &str) -> Result<Self, String>;

    /// Reads a config file value: strings as text, numbers and booleans as
    /// they are written.
    fn from_file(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(s) => Self::parse_text(s),
            Value::Number(_) | Value::Bool(_) => Self::parse_text(&value.to_string()),
            other => Err(format!(
                "expected a string, a number or a boolean, not {other}"
            )),
        }
    }

    /// The value as the README's table and `--help` show it.
    fn show(&self) -> String;
}

macro_rules! from_str_values {
    ($($t:ty: $what:literal),* $(,)?) => {$(
        impl SettingValue for $t {
            fn parse_text(text: &str) -> Result<Self, String> {
                text.trim()
                    .parse()
                    .map_err(|_| format!("{text:?} is not {}", $what))
            }

            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

from_str_values!(
    usize: "a non-negative integer",
    u32: "a non-negative integer",
    u64: "a non-negative integer",
    i64: "an integer",
    SocketAddr: "an address such as 0.0.0.0:8443",
);

impl SettingValue for String {
    fn parse_text(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }

    fn show(&self) -> String {
        self.clone()
    }
}

impl SettingValue for PathBuf {
    fn parse_text(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }

    fn show(&self) -> String {
        self.display().to_string()
    }
}

/// Booleans accept what people type, in any case: `1/0`, `true/false`,
/// `yes/no`, `on/off`.
impl SettingValue for bool {
    fn parse_text(text: &str) -> Result<Self, String> {
        service_main::parse_bool(text)
    }

    fn show(&self) -> String {
        self.to_string()
    }
}

/// Durations are written in seconds, fractions allowed.
impl SettingValue for Duration {
    fn parse_text(text: &str) -> Result<Self, String> {
        let secs: f64 = text
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a number of seconds"))?;
        Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("{text:?} is not a duration in seconds"))
    }

    fn show(&self) -> String {
        self.as_secs_f64().to_string()
    }
}

impl SettingValue for Rate {
    fn parse_text(text: &str) -> Result<Self, String> {
        Rate::parse(text)
    }

    fn show(&self) -> String {
        format!("{}/{}", self.per_second, self.burst)
    }
}

/// A comma-separated list, or a list in the config file.
impl SettingValue for TrustedProxies {
    fn parse_text(text: &str) -> Result<Self, String> {
        if text.trim().eq_ignore_ascii_case("none") {
            return Ok(TrustedProxies::default());
        }
        TrustedProxies::parse(text)
    }

    fn from_file(value: &Value) -> Result<Self, String> {
        match value {
            Value::Array(items) => {
                let entries: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                let entries = entries.ok_or("expected a list of strings")?;
                TrustedProxies::from_entries(entries)
            }
            Value::String(s) => TrustedProxies::parse(s),
            other => Err(format!("expected a list of addresses, not {other}")),
        }
    }

    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for NotifyMode {
    fn parse_text(text: &str) -> Result<Self, String> {
        <NotifyMode as clap::ValueEnum>::from_str(text.trim(), true)
    }

    fn show(&self) -> String {
        clap::ValueEnum::to_possible_value(self)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

impl SettingValue for LogFormat {
    fn parse_text(text: &str) -> Result<Self, String> {
        <LogFormat as clap::ValueEnum>::from_str(text.trim(), true)
    }

    fn show(&self) -> String {
        clap::ValueEnum::to_possible_value(self)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn booleans_accept_what_people_type() {
        assert!(bool::parse_text("Yes").unwrap());
        assert!(bool::parse_text("maybe").is_err());
        assert!(bool::from_file(&json!(true)).unwrap());
        assert!(bool::from_file(&json!("off")).is_ok_and(|b| !b));
    }

    #[test]
    fn file_values_read_like_text() {
        assert_eq!(usize::from_file(&json!(7)).unwrap(), 7);
        assert_eq!(usize::from_file(&json!("7")).unwrap(), 7);
        assert!(usize::from_file(&json!(-1)).is_err());
        assert!(usize::from_file(&json!([1])).is_err());
        assert_eq!(
            Duration::from_file(&json!(0.5)).unwrap(),
            Duration::from_millis(500)
        );
        assert!(Duration::from_file(&json!(-1)).is_err());
        assert_eq!(Rate::from_file(&json!("5/10")).unwrap().burst, 10.0);
        assert_eq!(Rate::from_file(&json!(5)).unwrap().burst, 10.0);
        let proxies = TrustedProxies::from_file(&json!(["10.0.0.0/8", "::1"])).unwrap();
        assert_eq!(proxies.show(), "10.0.0.0/8,::1/128");
        assert_eq!(
            NotifyMode::from_file(&json!("Events")).unwrap(),
            NotifyMode::Events
        );
    }
}
