//! Flags and environment variables, turned into a `Config`. Every flag
//! has an environment variable; `gateway --help` lists both.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::{Parser, ValueEnum};
use gateway::auth::AuthConfig;
use gateway::config::{FileConfig, NotifyMode, Rate, TlsConfig};
use gateway::Config;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// JSON-RPC 2.0 over WebSocket gateway: each call `service.method` becomes
/// a BullMQ job named `method` on queue `service`; progress and results
/// are pushed back to the socket.
///
/// Clients connect to wss://HOST:PORT/ws with a JWT in `?token=`, an
/// `Authorization: Bearer` header, or the subprotocols `bearer.<jwt>,
/// jsonrpc.v1`. See docs/protocol.md for the contract.
///
/// When REDIS_URL is unset the gateway starts its own redis-server (data in
/// --redis-data-dir, append-only file on). `--dev` also generates a
/// self-signed certificate and an HS256 secret, and prints a token and a
/// one-line client.
#[derive(Debug, Parser)]
#[command(name = "gateway", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// Redis URL (`redis://[user:pass@]host:port[/db]`, `rediss://` for TLS).
    /// Unset: start a local redis-server.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Where the self-started redis-server keeps its data.
    #[arg(long, env = "REDIS_DATA_DIR", default_value = ".data/redis")]
    pub redis_data_dir: PathBuf,

    /// The redis-server binary to start when REDIS_URL is unset.
    #[arg(long, env = "REDIS_SERVER_BIN", default_value = "redis-server")]
    pub redis_server_bin: String,

    /// BullMQ key prefix, shared with the workers.
    #[arg(long, env = "BULLMQ_PREFIX", default_value = "bull")]
    pub prefix: String,

    /// Services (BullMQ queues) clients may call, comma-separated; added to
    /// the config file's [services].
    #[arg(long, env = "SERVICES")]
    pub services: Option<String>,

    /// Config file (.toml or .json): [limits], [jobs], and [services.NAME]
    /// with per-method JSON Schemas and defaults.
    #[arg(long, env = "GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,

    /// HS256 shared secret for client tokens.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// PEM public key for client tokens (RSA: RS256, EC: ES256, Ed25519: EdDSA).
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// Accept this algorithm instead of the key's default (HS384, RS512, PS256, ES384...).
    #[arg(long, env = "JWT_ALGORITHM")]
    pub jwt_algorithm: Option<String>,

    /// Required `iss` claim.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Clock skew allowed on `exp`, seconds.
    #[arg(long, env = "JWT_LEEWAY_SECS", default_value_t = 30)]
    pub jwt_leeway_secs: u64,

    /// TLS certificate chain (PEM).
    #[arg(long, env = "TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, env = "TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// Serve plain ws:// without TLS (loopback tests, or behind a TLS proxy).
    #[arg(long, env = "PLAIN_WS")]
    pub plain_ws: bool,

    /// Dev mode: self-signed certificate and generated secret when none are
    /// given, services demo,data,analysis when none are given; prints the
    /// URL, a token and a one-line client.
    #[arg(long, env = "GATEWAY_DEV")]
    pub dev: bool,

    /// Also run the built-in Rust worker services (demo, data, analysis) in
    /// this process, on the same Redis; `--dev` turns this on.
    #[arg(long, env = "GATEWAY_WORKER")]
    pub with_worker: bool,

    /// How job changes are noticed: keyspace notifications (enabled with
    /// CONFIG SET), events streams, or auto (keyspace when allowed).
    #[arg(long, env = "NOTIFY_MODE", value_enum, default_value_t = NotifyMode::Auto)]
    pub notify: NotifyMode,

    /// Largest text frame in bytes [default: 65536].
    #[arg(long, env = "MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,

    /// Most requests in one batch [default: 100].
    #[arg(long, env = "MAX_BATCH")]
    pub max_batch: Option<usize>,

    /// Requests waiting for a job per connection [default: 256].
    #[arg(long, env = "MAX_IN_FLIGHT")]
    pub max_in_flight: Option<usize>,

    /// Open WebSocket connections [default: 100000].
    #[arg(long, env = "MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Messages queued per socket before a non-reading client is cut off [default: 1024].
    #[arg(long, env = "SEND_QUEUE")]
    pub send_queue: Option<usize>,

    /// Per-user rate limit, RATE or RATE/BURST requests per second; 0 = off [default: 200/400].
    #[arg(long, env = "RATE_LIMIT_USER")]
    pub rate_limit_user: Option<String>,

    /// Per-IP rate limit, RATE or RATE/BURST; 0 = off [default: 1000/2000].
    #[arg(long, env = "RATE_LIMIT_IP")]
    pub rate_limit_ip: Option<String>,

    /// Proxies (IPs or CIDR networks, comma-separated) whose X-Forwarded-For
    /// names the client for per-IP limits and logs; others' is ignored [default: none].
    #[arg(long, env = "TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,

    /// Server ping interval, seconds [default: 30].
    #[arg(long, env = "PING_INTERVAL_SECS")]
    pub ping_interval_secs: Option<f64>,

    /// Close sockets silent this long, seconds [default: 75].
    #[arg(long, env = "IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<f64>,

    /// Keep completed jobs (and results) this long, seconds [default: 3600].
    #[arg(long, env = "KEEP_COMPLETED_SECS")]
    pub keep_completed_secs: Option<i64>,

    /// Keep failed jobs this long, seconds [default: 3600].
    #[arg(long, env = "KEEP_FAILED_SECS")]
    pub keep_failed_secs: Option<i64>,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
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
    /// Builds the configuration; `redis_url` is the effective URL (given, or
    /// of the self-started server).
    pub fn into_setup(self, redis_url: String) -> anyhow::Result<Setup> {
        let mut dev_secret = None;
        let mut auth = match (&self.jwt_secret, &self.jwt_public_key_file) {
            (Some(_), Some(_)) => bail!("set JWT_SECRET or JWT_PUBLIC_KEY_FILE, not both"),
            (Some(s), None) => AuthConfig::hs256(s.as_bytes().to_vec()),
            (None, Some(p)) => AuthConfig::public_key_pem(
                std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            ),
            (None, None) if self.dev => {
                let secret: [u8; 32] = rand::random();
                dev_secret = Some(secret.to_vec());
                AuthConfig::hs256(secret.to_vec())
            }
            (None, None) => bail!("set JWT_SECRET or JWT_PUBLIC_KEY_FILE (or use --dev)"),
        };
        if let Some(alg) = &self.jwt_algorithm {
            auth.algorithm = Some(
                alg.parse()
                    .map_err(|_| anyhow::anyhow!("unknown JWT algorithm {alg:?}"))?,
            );
        }
        auth.issuer = self.jwt_issuer.clone();
        auth.audience = self.jwt_audience.clone();
        auth.leeway_secs = self.jwt_leeway_secs;
        let mut config = Config::new(redis_url, auth);
        config.listen = self.listen;
        config.prefix = self.prefix.clone();
        config.notify = self.notify;
        if let Some(path) = &self.config {
            FileConfig::load(path)?.apply(&mut config)?;
        }
        match &self.services {
            Some(list) => config.services.add_list(list)?,
            None if self.dev && config.services.0.is_empty() => {
                config.services.add_list("demo,data,analysis")?
            }
            None => {}
        }
        config.tls = match (&self.tls_cert_file, &self.tls_key_file) {
            _ if self.plain_ws => None,
            (Some(cert), Some(key)) => Some(TlsConfig::from_files(cert, key)?),
            (None, None) if self.dev => Some(gateway::tls::self_signed()?),
            _ => bail!("set TLS_CERT_FILE and TLS_KEY_FILE, or --plain-ws for ws:// (or --dev)"),
        };
        self.apply_limits(&mut config)?;
        config.validate()?;
        Ok(Setup { config, dev_secret })
    }

    fn apply_limits(&self, config: &mut Config) -> anyhow::Result<()> {
        let l = &mut config.limits;
        fn set<T: Copy>(slot: &mut T, v: Option<T>) {
            if let Some(v) = v {
                *slot = v;
            }
        }
        set(&mut l.max_message_bytes, self.max_message_bytes);
        set(&mut l.max_batch, self.max_batch);
        set(&mut l.max_in_flight, self.max_in_flight);
        set(&mut l.max_connections, self.max_connections);
        set(&mut l.send_queue, self.send_queue);
        if let Some(r) = &self.rate_limit_user {
            l.user_rate = Rate::parse(r).map_err(anyhow::Error::msg)?;
        }
        if let Some(r) = &self.rate_limit_ip {
            l.ip_rate = Rate::parse(r).map_err(anyhow::Error::msg)?;
        }
        if let Some(list) = &self.trusted_proxies {
            l.trusted_proxies =
                gateway::client_ip::TrustedProxies::parse(list).map_err(anyhow::Error::msg)?;
        }
        if let Some(s) = self.ping_interval_secs {
            l.ping_interval = std::time::Duration::try_from_secs_f64(s).context("ping interval")?;
        }
        if let Some(s) = self.idle_timeout_secs {
            l.idle_timeout = std::time::Duration::try_from_secs_f64(s).context("idle timeout")?;
        }
        set(
            &mut config.jobs.keep_completed_secs,
            self.keep_completed_secs,
        );
        set(&mut config.jobs.keep_failed_secs, self.keep_failed_secs);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("gateway").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn flags_build_a_config() {
        let setup = parse(&[
            "--jwt-secret",
            "s",
            "--services",
            "demo",
            "--plain-ws",
            "--max-in-flight",
            "3",
            "--rate-limit-user",
            "5/9",
        ])
        .into_setup("redis://x".into())
        .unwrap();
        assert_eq!(setup.config.limits.max_in_flight, 3);
        assert_eq!(
            setup.config.limits.user_rate,
            Rate {
                per_second: 5.0,
                burst: 9.0
            }
        );
        assert!(setup.config.tls.is_none());
        assert!(setup.dev_secret.is_none());
    }

    #[test]
    fn dev_fills_in_what_is_missing() {
        let setup = parse(&["--dev"]).into_setup("redis://x".into()).unwrap();
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
            parse(&["--services", "demo", "--plain-ws"])
                .into_setup("redis://x".into())
                .is_err(),
            "no key"
        );
        assert!(
            parse(&["--jwt-secret", "s", "--services", "demo"])
                .into_setup("redis://x".into())
                .is_err(),
            "no tls"
        );
        assert!(
            parse(&["--jwt-secret", "s", "--plain-ws"])
                .into_setup("redis://x".into())
                .is_err(),
            "no services"
        );
    }
}
