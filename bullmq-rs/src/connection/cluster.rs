//! Redis Cluster: the cluster client's connection, rebuilt from the seeds
//! when it stops finding nodes.
//!
//! The `redis` crate's cluster connection follows `MOVED`/`ASK` and
//! refreshes its slot map after a failover by itself. Under a failover with
//! many requests in flight it was seen to end with no usable node at all
//! ("No connections found") or with every request timing out, for good:
//! the process had to restart. [`FollowCluster`] keeps the connection in a
//! swappable slot; such an error makes it build a new one from the seeds
//! (at most once per [`REBUILD_EVERY`]), which reads the topology afresh.
//! A command refused unexecuted because its slot moved (`MOVED`, `ASK`,
//! `TRYAGAIN`, `CLUSTERDOWN`) after the crate's own redirects is sent again
//! a few times while the new master settles in.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionLike;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::RoutingInfo;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

/// The least time between two rebuilds.
const REBUILD_EVERY: Duration = Duration::from_secs(1);

/// Sends of a command the cluster refused unexecuted, at most.
const SENDS: u32 = 4;

/// The command connection to a cluster. Clones share it.
#[derive(Clone)]
pub(crate) struct FollowCluster {
    inner: Arc<Inner>,
}

struct Inner {
    client: ClusterClient,
    current: Mutex<Current>,
    /// One rebuild at a time.
    rebuilding: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Current {
    connection: ClusterConnection,
    generation: u64,
    built: Instant,
}

impl FollowCluster {
    pub(crate) async fn connect(client: ClusterClient) -> RedisResult<Self> {
        let connection = client.get_async_connection().await?;
        Ok(FollowCluster {
            inner: Arc::new(Inner {
                client,
                current: Mutex::new(Current {
                    connection,
                    generation: 0,
                    built: Instant::now(),
                }),
                rebuilding: tokio::sync::Mutex::new(()),
            }),
        })
    }

    fn current(&self) -> Current {
        super::lock(&self.inner.current).clone()
    }

    /// After an error that may mean the connection is stuck: a new one
    /// from the seeds, unless another caller rebuilt since `failed` or the
    /// last rebuild is too recent.
    async fn rebuild(&self, failed: u64) {
        let _one = self.inner.rebuilding.lock().await;
        let current = self.current();
        if current.generation != failed || current.built.elapsed() < REBUILD_EVERY {
            return;
        }
        match self.inner.client.get_async_connection().await {
            Ok(connection) => {
                tracing::info!("rebuilt the cluster connection from its seeds");
                let next = Current {
                    connection,
                    generation: current.generation + 1,
                    built: Instant::now(),
                };
                *super::lock(&self.inner.current) = next;
            }
            Err(e) => tracing::warn!(error = %e, "cannot rebuild the cluster connection yet"),
        }
    }

    async fn settle<T>(&self, generation: u64, result: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &result {
            if may_be_stuck(e) {
                self.rebuild(generation).await;
            }
        }
        result
    }

    /// Runs `op` on the connection in use, sending it again while the
    /// cluster refuses it unexecuted, and rebuilding the connection when
    /// it looks stuck.
    async fn send<T, F, Fut>(&self, mut op: F) -> RedisResult<T>
    where
        F: FnMut(ClusterConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let mut sends = 0;
        loop {
            sends += 1;
            let current = self.current();
            let result = op(current.connection).await;
            if !again(&result, sends).await {
                return self.settle(current.generation, result).await;
            }
        }
    }

    /// Runs `cmd` where `routing` says (a node by slot, for commands that
    /// name no key).
    pub(crate) async fn route_command(&self, cmd: Cmd, routing: RoutingInfo) -> RedisResult<Value> {
        self.send(|mut c| {
            let (cmd, routing) = (cmd.clone(), routing.clone());
            async move { c.route_command(cmd, routing).await }
        })
        .await
    }

    async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        self.send(|mut c| async move { c.req_packed_command(cmd).await })
            .await
    }

    async fn pipeline(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.send(|mut c| async move { c.req_packed_commands(pipeline, offset, count).await })
            .await
    }
}

/// True (after a pause) when `result` is a refusal of a command that was
/// not executed and `sends` leaves room for another.
async fn again<T>(result: &RedisResult<T>, sends: u32) -> bool {
    match result {
        Err(e) if not_executed(e) && sends < SENDS => {
            tokio::time::sleep(Duration::from_millis(100 * u64::from(sends))).await;
            true
        }
        _ => false,
    }
}

/// The cluster refused the command without running it: its slot is
/// moving or has no master yet.
pub(crate) fn not_executed(e: &RedisError) -> bool {
    use redis::ServerErrorKind as K;
    matches!(
        e.kind(),
        ErrorKind::Server(K::Moved | K::Ask | K::TryAgain | K::ClusterDown | K::MasterDown)
    )
}

/// No node to send to, or no answer in time: what a connection that lost
/// its way after a failover returns.
fn may_be_stuck(e: &RedisError) -> bool {
    e.kind() == ErrorKind::ClusterConnectionNotFound || e.is_timeout()
}

impl ConnectionLike for FollowCluster {
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
        0
    }
}
