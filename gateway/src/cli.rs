//! Flags and environment variables, layered over the config file and the
//! defaults, turned into a `Config`. The settings themselves are defined
//! once in the library (`gateway::config::SETTINGS`); `gateway --help`
//! lists each with its environment variable and default.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::{CommandFactory, FromArgMatches, Parser};
use gateway::auth::AuthConfig;
use gateway::config::{FileConfig, FileService, Settings, SettingsArgs, TlsConfig, SETTINGS};
use gateway::Config;

/// JSON-RPC 2.0 over WebSocket gateway: each call `service.method` becomes
/// a BullMQ job named `method` on queue `service`; progress and results
/// are pushed back to the socket.
///
/// Clients connect to wss://HOST:PORT/ws with a JWT in `?token=`, an
/// `Authorization: Bearer` header, or the subprotocols `bearer.<jwt>,
/// jsonrpc.v1`. See docs/protocol.md for the contract.
///
/// Every setting comes from, lowest first: its default, the config file,
/// its environment variable, its flag. Booleans accept 1/0, true/false,
/// yes/no, on/off.
///
/// When REDIS_URL is unset the gateway starts its own redis-server (data in
/// --redis-data-dir, append-only file on). `--dev` also generates a
/// self-signed certificate and an HS256 secret, and prints a token and a
/// one-line client.
#[derive(Debug, Parser)]
#[command(name = "gateway", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Config file (.toml or .json): sections `[server]`, `[redis]`, `[auth]`,
    /// `[limits]`, `[jobs]` with the settings' file keys, and
    /// `[services.NAME]` with per-method JSON Schemas and defaults.
    #[arg(long, env = "GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub settings: SettingsArgs,
}

/// Every layer resolved.
#[derive(Debug)]
pub struct Loaded {
    /// The settings.
    pub settings: Settings,
    /// The config file's `[services]`.
    pub file_services: HashMap<String, FileService>,
}

/// What `main` needs beyond the config.
#[derive(Debug)]
pub struct Setup {
    /// The gateway configuration.
    pub config: Config,
    /// The dev secret, when one was generated (to print a token).
    pub dev_secret: Option<Vec<u8>>,
}

impl Cli {
    /// Parses the command line, with each setting's default in `--help`.
    pub fn parse_args() -> Self {
        let matches = Self::command_with_defaults().get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    fn command_with_defaults() -> clap::Command {
        let mut cmd = Cli::command();
        for s in SETTINGS {
            cmd = cmd.mut_arg(s.name, |arg| {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!("{help} [default: {}]", (s.default)()))
            });
        }
        cmd
    }

    /// Applies the layers: defaults, then the config file, then the
    /// environment and flags (clap has already let a flag win over its
    /// environment variable).
    pub fn load(self) -> anyhow::Result<Loaded> {
        let mut settings = Settings::default();
        let mut file_services = HashMap::new();
        if let Some(path) = &self.config {
            let file = FileConfig::load(path)?;
            file.settings.apply(&mut settings);
            file_services = file.services;
        }
        self.settings.apply(&mut settings);
        Ok(Loaded {
            settings,
            file_services,
        })
    }
}

impl Loaded {
    /// Builds the configuration; `redis_url` is the effective URL (given, or
    /// of the self-started server).
    pub fn into_setup(self, redis_url: String) -> anyhow::Result<Setup> {
        let Loaded {
            settings,
            file_services,
        } = self;
        let (server, auth_settings) = (&settings.server, &settings.auth);
        let dev = server.dev;
        let mut dev_secret = None;
        let mut auth = match (
            &auth_settings.jwt_secret,
            &auth_settings.jwt_public_key_file,
        ) {
            (Some(_), Some(_)) => bail!("set JWT_SECRET or JWT_PUBLIC_KEY_FILE, not both"),
            (Some(s), None) => AuthConfig::hs256(s.as_bytes().to_vec()),
            (None, Some(p)) => AuthConfig::public_key_pem(
                std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            ),
            (None, None) if dev => {
                let secret: [u8; 32] = rand::random();
                dev_secret = Some(secret.to_vec());
                AuthConfig::hs256(secret.to_vec())
            }
            (None, None) => bail!("set JWT_SECRET or JWT_PUBLIC_KEY_FILE (or use --dev)"),
        };
        if let Some(alg) = &auth_settings.jwt_algorithm {
            auth.algorithm = Some(
                alg.parse()
                    .map_err(|_| anyhow::anyhow!("unknown JWT algorithm {alg:?}"))?,
            );
        }
        auth.issuer = auth_settings.jwt_issuer.clone();
        auth.audience = auth_settings.jwt_audience.clone();
        auth.leeway_secs = auth_settings.jwt_leeway_secs;
        auth.max_token_bytes = auth_settings.max_token_bytes;
        let mut config = Config::new(redis_url, auth);
        config.listen = server.listen;
        config.prefix = settings.redis.prefix.clone();
        config.notify = server.notify;
        FileConfig::add_services(file_services, &mut config.services)?;
        match &server.services {
            Some(list) => config.services.add_list(list)?,
            None if dev && config.services.0.is_empty() => {
                config.services.add_list("demo,data,analysis")?
            }
            None => {}
        }
        config.tls = match (&server.tls_cert_file, &server.tls_key_file) {
            _ if server.plain_ws => None,
            (Some(cert), Some(key)) => Some(TlsConfig::from_files(cert, key)?),
            (None, None) if dev => Some(gateway::tls::self_signed()?),
            _ => bail!("set TLS_CERT_FILE and TLS_KEY_FILE, or --plain-ws for ws:// (or --dev)"),
        };
        config.limits = settings.limits;
        config.jobs = settings.jobs;
        config.metrics = settings.metrics;
        config.validate()?;
        Ok(Setup { config, dev_secret })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway::config::{LogFormat, Rate};
    use std::time::Duration;

    fn parse(args: &[&str]) -> Cli {
        let matches = Cli::command_with_defaults()
            .try_get_matches_from(std::iter::once("gateway").chain(args.iter().copied()))
            .unwrap();
        Cli::from_arg_matches(&matches).unwrap()
    }

    fn setup(args: &[&str]) -> anyhow::Result<Setup> {
        parse(args).load()?.into_setup("redis://x".into())
    }

    #[test]
    fn flags_build_a_config() {
        let setup = setup(&[
            "--jwt-secret",
            "s",
            "--services",
            "demo",
            "--plain-ws",
            "--max-in-flight",
            "3",
            "--rate-limit-user",
            "5/9",
            "--shutdown-grace-secs",
            "0.5",
            "--rate-limit-close-after",
            "7",
            "--max-attempts",
            "4",
        ])
        .unwrap();
        let c = &setup.config;
        assert_eq!(c.limits.max_in_flight, 3);
        assert_eq!(
            c.limits.user_rate,
            Rate {
                per_second: 5.0,
                burst: 9.0
            }
        );
        assert_eq!(c.limits.shutdown_grace, Duration::from_millis(500));
        assert_eq!(c.limits.rate_limit_close_after, 7);
        assert_eq!(c.jobs.max_attempts, 4);
        assert!(c.tls.is_none());
        assert!(setup.dev_secret.is_none());
    }

    #[test]
    fn boolean_flags_take_a_value_or_none() {
        for (args, expected) in [
            (&["--plain-ws"][..], true),
            (&["--plain-ws=1"][..], true),
            (&["--plain-ws=off"][..], false),
            (&["--plain-ws", "No"][..], false),
            (&[][..], false),
        ] {
            let loaded = parse(args).load().unwrap();
            assert_eq!(loaded.settings.server.plain_ws, expected, "{args:?}");
        }
        assert!(Cli::command_with_defaults()
            .try_get_matches_from(["gateway", "--plain-ws=maybe"])
            .is_err());
    }

    #[test]
    fn threads_default_to_one_per_core_and_take_a_count() {
        assert_eq!(parse(&[]).load().unwrap().settings.server.threads, 0);
        let loaded = parse(&["--threads", "1"]).load().unwrap();
        assert_eq!(loaded.settings.server.threads, 1);
        assert!(Cli::command_with_defaults()
            .try_get_matches_from(["gateway", "--threads", "-1"])
            .is_err());
    }

    #[test]
    fn the_file_sits_between_defaults_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(
            &path,
            r#"
            [server]
            plain_ws = "yes"
            services = "demo"
            log_format = "json"
            [auth]
            jwt_secret = "s"
            [limits]
            max_batch = 7
            max_in_flight = 9
            shutdown_grace_secs = 2
            [jobs]
            max_attempts = 3
            "#,
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let loaded = parse(&["--config", path, "--max-in-flight", "11"])
            .load()
            .unwrap();
        assert_eq!(loaded.settings.server.log_format, LogFormat::Json);
        let setup = loaded.into_setup("redis://x".into()).unwrap();
        let c = &setup.config;
        assert_eq!(c.limits.max_batch, 7, "from the file");
        assert_eq!(c.limits.max_in_flight, 11, "the flag wins over the file");
        assert_eq!(c.limits.max_connections, 100_000, "the default");
        assert_eq!(c.limits.shutdown_grace, Duration::from_secs(2));
        assert_eq!(c.jobs.max_attempts, 3);
        assert!(c.tls.is_none());
        assert_eq!(c.services.names(), vec!["demo"]);
    }

    #[test]
    fn help_shows_each_default() {
        let help = Cli::command_with_defaults().render_long_help().to_string();
        assert!(help.contains("[default: 65536]"), "{help}");
        assert!(help.contains("[default: 200/400]"), "{help}");
        assert!(help.contains("MAX_ATTEMPTS"), "{help}");
    }

    #[test]
    fn dev_fills_in_what_is_missing() {
        let setup = setup(&["--dev"]).unwrap();
        assert!(setup.config.tls.is_some());
        assert_eq!(setup.dev_secret.as_ref().map(Vec::len), Some(32));
        assert_eq!(
            setup.config.services.names(),
            vec!["analysis", "data", "demo"]
        );
    }

    #[test]
    fn refuses_incomplete_setups() {
        assert!(
            setup(&["--services", "demo", "--plain-ws"]).is_err(),
            "no key"
        );
        assert!(
            setup(&["--jwt-secret", "s", "--services", "demo"]).is_err(),
            "no tls"
        );
        assert!(
            setup(&["--jwt-secret", "s", "--plain-ws"]).is_err(),
            "no services"
        );
    }
}
