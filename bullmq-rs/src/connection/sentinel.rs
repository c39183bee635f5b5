//! Redis behind Sentinel: the master is whatever the sentinels name now.
//!
//! [`SentinelMaster`] asks the sentinels for the master's address (the
//! `redis` crate checks with `ROLE` that the node it names is a master).
//! [`FollowMaster`] is the command connection on top: a reconnecting
//! connection to that master which, when a command fails because the
//! master went away or turned into a replica (`READONLY`), asks the
//! sentinels again and moves to the new master. Until the sentinels have
//! named a master again, commands fail (retryable) instead of going to the
//! old address: a killed master restarted without its data comes back as
//! an empty master for a while, and writes it took then would be wiped
//! when the sentinels make it a replica. Blocking readers ask for the
//! master each time they (re)connect.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// One re-resolution at a time, and when the last one that found no
    /// master was made.
    refreshing: tokio::sync::Mutex<Option<Instant>>,
}

#[derive(Clone)]
struct Current {
    manager: ConnectionManager,
    address: String,
    generation: u64,
    /// The sentinels named this master since the last failure on it.
    confirmed: bool,
}

/// While the sentinels name no reachable master, they are asked at most
/// this often; commands meanwhile fail at once (retryable).
const ASK_AGAIN_AFTER: Duration = Duration::from_millis(200);

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
                    confirmed: true,
                }),
                refreshing: tokio::sync::Mutex::new(None),
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
        super::lock(&self.inner.current).clone()
    }

    /// A failure that may mean a failover: the master in use is no longer
    /// trusted until the sentinels name it (or another) again.
    fn distrust(&self, generation: u64) {
        let mut current = super::lock(&self.inner.current);
        if current.generation == generation {
            current.confirmed = false;
        }
    }

    /// Asks the sentinels for the master and moves to it (or confirms the
    /// one in use). Returns the connection to use, or `None` while they
    /// name no reachable master.
    async fn confirmed(&self) -> Option<Current> {
        let current = self.current();
        if current.confirmed {
            return Some(current);
        }
        let mut last_miss = self.inner.refreshing.lock().await;
        let current = self.current();
        if current.confirmed {
            return Some(current); // another caller confirmed meanwhile
        }
        if last_miss.is_some_and(|at| at.elapsed() < ASK_AGAIN_AFTER) {
            return None;
        }
        let client = match self.inner.master.client().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "sentinels did not name a reachable master");
                *last_miss = Some(Instant::now());
                return None;
            }
        };
        let address = client_address(&client);
        let manager = if address == current.address {
            current.manager.clone()
        } else {
            match ConnectionManager::new_with_config(client, self.inner.config.clone()).await {
                Ok(manager) => {
                    tracing::info!(from = %current.address, to = %address, "following the new master");
                    manager
                }
                Err(e) => {
                    tracing::warn!(to = %address, error = %e, "cannot reach the new master");
                    *last_miss = Some(Instant::now());
                    return None;
                }
            }
        };
        *last_miss = None;
        let next = Current {
            manager,
            address,
            generation: current.generation + 1,
            confirmed: true,
        };
        *super::lock(&self.inner.current) = next.clone();
        Some(next)
    }

    /// Runs `op` on the confirmed master; a failure that may mean a
    /// failover makes the master untrusted.
    async fn send<T, F, Fut>(&self, op: F) -> RedisResult<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let current = self.confirmed().await.ok_or_else(no_master)?;
        let result = op(current.manager).await;
        if let Err(e) = &result {
            if may_be_failover(e) {
                self.distrust(current.generation);
            }
        }
        result
    }

    async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        self.send(|mut m| async move { m.send_packed_command(cmd).await })
            .await
    }

    async fn pipeline(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.send(|mut m| async move { m.send_packed_commands(pipeline, offset, count).await })
            .await
    }
}

/// Not sent: the sentinels name no master that answers yet.
fn no_master() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "the sentinels name no reachable master yet (failover in progress?)",
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_master_is_a_retryable_refusal() {
        let e = no_master();
        assert!(e.is_connection_refusal() && e.is_io_error(), "{e:?}");
        assert!(crate::Error::Redis(e).is_retryable());
    }
}
