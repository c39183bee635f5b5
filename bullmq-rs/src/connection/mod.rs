//! The Redis connection every queue, worker and events reader shares
//! (`command`: checked before use after idling, so a Redis restart fails
//! no command), and the dedicated blocking connections workers and events
//! readers open. Connection errors name `host:port` (`address`).

mod address;
mod command;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::AsyncConnectionConfig;

use crate::error::{Error, Result};
use address::{address_of, with_address};
pub use command::CommandConnection;

/// The default key prefix, BullMQ's.
pub const DEFAULT_PREFIX: &str = "bull";

/// How to reach Redis: a `redis://` or `rediss://` (TLS) URL, with user and
/// password in it when needed, and the key prefix shared with the other
/// BullMQ clients of the deployment.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]` or `rediss://...` for TLS.
    pub url: String,
    /// Key prefix, `bull` by default. Use a hash tag such as `{bull}` for
    /// Redis Cluster, as with BullMQ.
    pub prefix: String,
    /// How long one command may take before it fails (blocking reads have
    /// their own connections and no such limit).
    pub command_timeout: Duration,
    /// PEM of the CA that signed the server's certificate, for `rediss://`
    /// with a private CA (otherwise the system's roots are used).
    pub tls_ca_pem: Option<Vec<u8>>,
}

impl RedisOptions {
    /// Options for `url` with the default prefix.
    pub fn new(url: impl Into<String>) -> Self {
        RedisOptions {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_string(),
            command_timeout: Duration::from_secs(30),
            tls_ca_pem: None,
        }
    }

    /// The same options with another key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// A cheap-to-clone handle on Redis: one multiplexed, self-reconnecting
/// connection for commands and scripts, plus what is needed to open
/// dedicated blocking connections.
#[derive(Clone)]
pub struct Connection {
    client: redis::Client,
    commands: CommandConnection,
    prefix: Arc<str>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.commands.address())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects; fails when the URL is malformed or Redis cannot be reached.
    pub async fn connect(options: RedisOptions) -> Result<Self> {
        if options.prefix.is_empty() {
            return Err(Error::invalid("prefix", "the key prefix must not be empty"));
        }
        if options.url.starts_with("rediss://") {
            // Another crate of the program may have installed a provider
            // already; either way one is in place afterwards. rustls 0.23.48
            // deprecates ring's provider for lacking post-quantum key
            // exchange; ring stays our choice (aws-lc-rs needs a C/cmake
            // build), so the deprecation is allowed here, where it is made.
            #[allow(deprecated)]
            let provider = rustls::crypto::ring::default_provider();
            let _ = provider.install_default();
        }
        let client = match options.tls_ca_pem {
            Some(pem) => redis::Client::build_with_tls(
                options.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )?,
            None => redis::Client::open(options.url.as_str())?,
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(options.command_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let address: Arc<str> = address_of(&client).into();
        let manager = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| with_address(e, &address))?;
        Ok(Connection {
            client,
            commands: CommandConnection::new(manager, address),
            prefix: options.prefix.into(),
        })
    }

    /// A connection that never reaches Redis (feature `testing`): every
    /// command fails at once with a connection error. For jobs built in
    /// memory by `Job::builder`. Must be called inside a Tokio runtime.
    #[cfg(feature = "testing")]
    pub fn detached() -> Result<Self> {
        // port 0 is never listening: connecting fails without a timeout
        let client = redis::Client::open("redis://127.0.0.1:0")?;
        let config = ConnectionManagerConfig::new().set_number_of_retries(0);
        let address: Arc<str> = address_of(&client).into();
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| with_address(e, &address))?;
        Ok(Connection {
            client,
            commands: CommandConnection::new(manager, address),
            prefix: DEFAULT_PREFIX.into(),
        })
    }

    /// Shorthand for [`Connection::connect`] with the default prefix.
    pub async fn open(url: &str) -> Result<Self> {
        Self::connect(RedisOptions::new(url)).await
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `host:port` of the server (never a password).
    pub fn address(&self) -> &str {
        self.commands.address()
    }

    /// The shared command connection (clones share one socket and
    /// reconnect by themselves), for commands this library has no method for.
    pub fn command_connection(&self) -> CommandConnection {
        self.commands.clone()
    }

    pub(crate) fn manager(&self) -> CommandConnection {
        self.commands.clone()
    }

    /// Opens a new connection without a response timeout, for BZPOPMIN or
    /// XREAD BLOCK, and names it (`CLIENT SETNAME`) when a name is given.
    pub(crate) async fn blocking(&self, name: Option<&str>) -> Result<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(None);
        let address = self.commands.address();
        let mut con = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| with_address(e, address))?;
        if let Some(name) = name {
            let _: () = redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(name)
                .query_async(&mut con)
                .await
                .map_err(|e| with_address(e, address))?;
        }
        Ok(con)
    }
}
