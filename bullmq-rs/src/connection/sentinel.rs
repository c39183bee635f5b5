//! Redis behind Sentinel: the master is whatever the sentinels name now.
//!
//! [`SentinelMaster`] asks the sentinels for the master's address (the
//! `redis` crate checks with `ROLE` that the node it names is a master).
//! [`FollowMaster`] is the command connection on top: a reconnecting
//! connection to that master which, when a command fails because the
//! master went away or turned into a replica (`READONLY`), asks the
//! sentinels again and moves to the new master. Blocking readers ask for
//! the master each time they (re)connect.

use std::sync::{Arc, Mutex};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Cmd, ConnectionAddr, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use super::target::{Credentials, NodeAddress};
use crate::error::{Error, Result};

/// Finds the current master of one sentinel-monitored set.
pub(crate) struct SentinelMaster {
    client: tokio::sync::Mutex<SentinelClient>,
    master_name: String,
}

/// How to reach the sentinels and the Redis servers they name.
pub(crate) struct SentinelSetup<'a> {
    pub sentinels: &'a [NodeAddress],
    pub master_name: &'a str,
    pub db: i64,
    pub redis: &'a Credentials,
    pub sentinel: &'a Credentials,
    pub tls: bool,
    pub tls_ca_pem: Option<&'a [u8]>,
}

impl SentinelMaster {
    pub(crate) fn new(setup: SentinelSetup<'_>) -> Result<Self> {
        let addrs = setup
            .sentinels
            .iter()
            .map(|n| ConnectionAddr::Tcp(n.host.clone(), n.port));
        let mut builder =
            SentinelClientBuilder::new(addrs, setup.master_name, SentinelServerType::Master)?
                .set_client_to_redis_db(setup.db);
        if let Some(user) = &setup.redis.username {
            builder = builder.set_client_to_redis_username(user);
        }
        if let Some(password) = &setup.redis.password {
            builder = builder.set_client_to_redis_password(password);
        }
        if let Some(user) = &setup.sentinel.username {
            builder = builder.set_client_to_sentinel_username(user);
        }
        if let Some(password) = &setup.sentinel.password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        if setup.tls {
            builder = builder.set_client_to_redis_tls_mode(redis::TlsMode::Secure);
            if let Some(pem) = setup.tls_ca_pem {
                builder = builder.set_client_to_redis_certificates(redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.to_vec()),
                });
            }
        }
        Ok(SentinelMaster {
            client: tokio::sync::Mutex::new(builder.build()?),
            master_name: setup.master_name.to_string(),
        })
    }

    /// A client for the master the sentinels name now.
    pub(crate) async fn client(&self) -> Result<redis::Client> {
        let mut sentinel = self.client.lock().await;
        sentinel.async_get_client().await.map_err(|e| {
            Error::Redis(RedisError::from((
                redis::ErrorKind::Io,
                "no master from the sentinels",
                format!("master {:?}: {e}", self.master_name),
            )))
        })
    }
}

/// `host:port` a client dials.
pub(crate) fn client_address(client: &redis::Client) -> String {
    client.get_connection_info().addr().to_string()
}

/// The command connection to the current master, moving to a new master
/// after a failover. Clones share everything.
#[derive(Clone)]
pub(crate) struct FollowMaster {
    inner: Arc<Inner>,
}

struct Inner {
    master: SentinelMaster,
    config: ConnectionManagerConfig,
    current: Mutex<Current>,
    /// One re-resolution at a time.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Current {
    manager: ConnectionManager,
    address: String,
    generation: u64,
}

impl FollowMaster {
    pub(crate) async fn connect(
        master: SentinelMaster,
        config: ConnectionManagerConfig,
    ) -> Result<Self> {
        let client = master.client().await?;
        let address = client_address(&client);
        let manager = ConnectionManager::new_with_config(client, config.clone()).await?;
        Ok(FollowMaster {
            inner: Arc::new(Inner {
                master,
                config,
                current: Mutex::new(Current {
                    manager,
                    address,
                    generation: 0,
                }),
                refreshing: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The master's sentinels, for blocking connections of their own.
    pub(crate) fn master(&self) -> &SentinelMaster {
        &self.inner.master
    }

    /// `host:port` of the master in use.
    pub(crate) fn address(&self) -> String {
        self.current().address
    }

    fn current(&self) -> Current {
        match self.inner.current.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// After a failure that may mean a failover: asks the sentinels, and
    /// moves to the master they name when it is another server.
    async fn refresh(&self, failed_generation: u64) {
        let _one = self.inner.refreshing.lock().await;
        let current = self.current();
        if current.generation != failed_generation {
            return; // someone else moved already
        }
        let client = match self.inner.master.client().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "sentinels did not name a master");
                return;
            }
        };
        let address = client_address(&client);
        if address == current.address {
            return; // no failover (yet); the manager reconnects by itself
        }
        match ConnectionManager::new_with_config(client, self.inner.config.clone()).await {
            Ok(manager) => {
                tracing::info!(from = %current.address, to = %address, "following the new master");
                let next = Current {
                    manager,
                    address,
                    generation: current.generation + 1,
                };
                match self.inner.current.lock() {
                    Ok(mut c) => *c = next,
                    Err(poisoned) => *poisoned.into_inner() = next,
                }
            }
            Err(e) => tracing::warn!(to = %address, error = %e, "cannot reach the new master"),
        }
    }

    async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        let mut current = self.current();
        let result = current.manager.send_packed_command(cmd).await;
        if let Err(e) = &result {
            if may_be_failover(e) {
                self.refresh(current.generation).await;
            }
        }
        result
    }

    async fn pipeline(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let mut current = self.current();
        let result = current
            .manager
            .send_packed_commands(pipeline, offset, count)
            .await;
        if let Err(e) = &result {
            if may_be_failover(e) {
                self.refresh(current.generation).await;
            }
        }
        result
    }
}

/// The master is gone, or the server is a replica now.
fn may_be_failover(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || is_read_only(e)
}

/// `READONLY`: the write reached a replica, which refused it unexecuted.
pub(crate) fn is_read_only(e: &RedisError) -> bool {
    e.code() == Some("READONLY")
}

impl ConnectionLike for FollowMaster {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.command(cmd))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(self.pipeline(pipeline, offset, count))
    }

    fn get_db(&self) -> i64 {
        self.current().manager.get_db()
    }
}
