//! The shared command connection, made safe to use after Redis restarts.
//!
//! redis' `ConnectionManager` notices a dead socket only when a command
//! fails on it, and keeps a failed reconnect as the connection until the
//! next command: either way the first command after Redis is back fails.
//! [`CommandConnection`] checks the connection with a PING before a command
//! when it has been idle (so the reconnect happens before the command, not
//! on it), retries a command once when it certainly was not sent (the
//! connect was refused, or writing it hit a closed socket) or when it only
//! reads, and names the server's address in connection errors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use super::address::{io_kind, with_address};
use super::cluster::FollowCluster;
use super::sentinel::{is_read_only, FollowMaster};

/// After this long without a reply, the connection is checked before use.
pub(crate) const IDLE_CHECK_AFTER: Duration = Duration::from_millis(250);

/// Commands safe to send twice: they only read.
const READ_ONLY: &[&str] = &[
    "PING",
    "ECHO",
    "TIME",
    "INFO",
    "DBSIZE",
    "EXISTS",
    "TYPE",
    "TTL",
    "PTTL",
    "GET",
    "MGET",
    "STRLEN",
    "HGET",
    "HMGET",
    "HGETALL",
    "HEXISTS",
    "HLEN",
    "HKEYS",
    "HVALS",
    "HSCAN",
    "LRANGE",
    "LLEN",
    "LINDEX",
    "LPOS",
    "SMEMBERS",
    "SISMEMBER",
    "SCARD",
    "SSCAN",
    "ZRANGE",
    "ZREVRANGE",
    "ZRANGEBYSCORE",
    "ZREVRANGEBYSCORE",
    "ZSCORE",
    "ZCARD",
    "ZCOUNT",
    "ZRANK",
    "ZREVRANK",
    "ZSCAN",
    "XRANGE",
    "XREVRANGE",
    "XLEN",
    "XINFO",
    "SCAN",
    "EVALSHA_RO",
    "EVAL_RO",
];

/// What commands travel on, by deployment.
#[derive(Clone)]
pub(crate) enum Backend {
    /// One server, reconnecting to the same address.
    Server(ConnectionManager),
    /// The master Sentinel names, followed across failovers.
    Sentinel(FollowMaster),
    /// A cluster: each command goes to the node owning its keys' slot,
    /// following MOVED/ASK and new masters after a failover.
    Cluster(FollowCluster),
}

impl Backend {
    fn send<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Backend::Server(c) => c.req_packed_command(cmd),
            Backend::Sentinel(c) => c.req_packed_command(cmd),
            Backend::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn send_pipeline<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Backend::Server(c) => c.req_packed_commands(pipeline, offset, count),
            Backend::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
            Backend::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Backend::Server(c) => c.get_db(),
            Backend::Sentinel(c) => c.get_db(),
            Backend::Cluster(c) => c.get_db(),
        }
    }
}

/// A clone-able handle on the process' one command connection (clones share
/// the socket and its idle clock). Use it as any async redis connection.
#[derive(Clone)]
pub struct CommandConnection {
    manager: Backend,
    /// Milliseconds after `epoch` of the last reply (of any kind).
    last_reply_ms: Arc<AtomicU64>,
    epoch: Instant,
    address: Arc<str>,
}

impl std::fmt::Debug for CommandConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandConnection")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl CommandConnection {
    pub(crate) fn new(manager: Backend, address: Arc<str>) -> Self {
        let epoch = Instant::now();
        CommandConnection {
            manager,
            last_reply_ms: Arc::new(AtomicU64::new(0)),
            epoch,
            address,
        }
    }

    /// `host:port` of the server (never a password); for a cluster or a
    /// Sentinel set, the nodes the deployment was named by.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// True on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.manager, Backend::Cluster(_))
    }

    /// Runs `cmd`, which names no key, where the keys of `slot` live: on a
    /// cluster the master serving that slot, elsewhere the one server.
    pub(crate) async fn query_on_slot(&mut self, cmd: Cmd, slot: u16) -> RedisResult<Value> {
        match &mut self.manager {
            Backend::Cluster(c) => {
                let route = SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master));
                let reply = c.route_command(cmd, RoutingInfo::SingleNode(route)).await;
                self.settle(reply)
            }
            _ => self.command(&cmd).await,
        }
    }

    /// Round trip of one PING, after reconnecting when needed: what a
    /// health check should ask.
    pub async fn ping(&mut self) -> RedisResult<Duration> {
        let started = Instant::now();
        let _: String = redis::cmd("PING").query_async(self).await?;
        Ok(started.elapsed())
    }

    fn replied(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_reply_ms.store(now, Ordering::Relaxed);
    }

    fn idle(&self) -> bool {
        let last = Duration::from_millis(self.last_reply_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last) >= IDLE_CHECK_AFTER
    }

    /// After idling, a PING finds a dead socket (and starts the reconnect)
    /// before a command does; a second PING waits for that reconnect.
    async fn check_if_idle(&mut self) {
        // the cluster client checks and refreshes its node connections itself
        if self.is_cluster() || !self.idle() {
            return;
        }
        let ping = redis::cmd("PING");
        for _ in 0..2 {
            match self.manager.send(&ping).await {
                Ok(_) => {
                    self.replied();
                    return;
                }
                Err(e) if is_connection_error(&e) => continue,
                // a server error (LOADING, auth) is the command's to report
                Err(_) => return,
            }
        }
    }

    async fn command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        self.check_if_idle().await;
        let mut result = self.manager.send(cmd).await;
        if let Err(e) = &result {
            if never_sent(e) || (is_connection_error(e) && reads_only(cmd)) {
                result = self.manager.send(cmd).await;
            }
        }
        self.settle(result)
    }

    async fn pipeline(
        &mut self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.check_if_idle().await;
        let mut result = self.manager.send_pipeline(pipeline, offset, count).await;
        if let Err(e) = &result {
            if never_sent(e) {
                result = self.manager.send_pipeline(pipeline, offset, count).await;
            }
        }
        self.settle(result)
    }

    fn settle<T>(&self, result: RedisResult<T>) -> RedisResult<T> {
        match result {
            Ok(v) => {
                self.replied();
                Ok(v)
            }
            Err(e) if e.is_io_error() => Err(with_address(e, &self.address)),
            Err(e) => {
                // the server answered: the connection is alive
                self.replied();
                Err(e)
            }
        }
    }
}

fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// The command cannot have run: connecting was refused, the socket was
/// already closed when it was written, or a replica refused it (READONLY:
/// a failover the connection is following).
fn never_sent(e: &RedisError) -> bool {
    e.is_connection_refusal()
        || is_read_only(e)
        || matches!(
            io_kind(e),
            Some(std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::NotConnected)
        )
}

fn reads_only(cmd: &Cmd) -> bool {
    let Some(redis::Arg::Simple(name)) = cmd.args_iter().next() else {
        return false;
    };
    READ_ONLY
        .iter()
        .any(|ro| ro.as_bytes().eq_ignore_ascii_case(name))
}

impl ConnectionLike for CommandConnection {
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
        self.manager.get_db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_count_as_safe_to_repeat() {
        assert!(reads_only(&redis::cmd("hgetall")));
        assert!(reads_only(redis::cmd("LRANGE").arg("k").arg(0).arg(-1)));
        assert!(!reads_only(redis::cmd("EVALSHA").arg("abc").arg(0)));
        assert!(!reads_only(redis::cmd("RPUSH").arg("k").arg("v")));
    }
}
