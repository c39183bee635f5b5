//! A throwaway Redis Cluster: six `redis-server` processes on loopback
//! (three masters, each with one replica), joined with
//! `redis-cli --cluster create`. Tests kill a master to force a failover.

use std::process::Command;

use super::node::{connect, info_field, query, wait_for, wait_replicated, NodeProcess};

/// A 6-node cluster owned by a test; every node is killed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<NodeProcess>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts 3 masters and 3 replicas and waits until every slot is served
    /// and every master has its replica. Panics with advice when
    /// `redis-server` or `redis-cli` is missing (tests only).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the cluster");
        let nodes: Vec<NodeProcess> = (0..6)
            .map(|_| {
                let bus = super::free_port().to_string();
                NodeProcess::start(
                    dir.path(),
                    &[
                        "--port",
                        "{port}",
                        "--bind",
                        "127.0.0.1",
                        "--dir",
                        "{dir}",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--logfile",
                        "{dir}/redis.log",
                        "--repl-diskless-sync-delay",
                        "0",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                        "--cluster-port",
                        &bus,
                    ],
                )
            })
            .collect();
        let mut create = Command::new(cli_bin());
        create.args(["--cluster", "create"]);
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        let out = create.output().unwrap_or_else(|e| {
            panic!("cannot run redis-cli ({e}); install it (apt-get install redis-tools)")
        });
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes, _dir: dir };
        cluster.wait_healthy();
        cluster
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The ports of all six nodes.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The ports of the nodes that are running masters now.
    pub fn masters(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .filter(|n| role(n.port).as_deref() == Some("master"))
            .map(|n| n.port)
            .collect()
    }

    /// The port of the master serving `key`'s slot now.
    pub fn node_for_key(&self, key: &str) -> u16 {
        let slot: i64 = self
            .live_port()
            .and_then(|p| query(p, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key)))
            .expect("CLUSTER KEYSLOT");
        self.master_of_slot(slot)
            .unwrap_or_else(|| panic!("no master serves slot {slot} of {key}"))
    }

    /// Kills (SIGKILL) the master serving `key`'s slot; returns its port.
    pub fn kill_master_for(&mut self, key: &str) -> u16 {
        let port = self.node_for_key(key);
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port == port) {
            node.kill();
        }
        port
    }

    /// Waits until a running master other than `old` serves `key`'s slot
    /// and the cluster says it is ok again; returns the new master's port.
    pub fn wait_for_failover(&self, key: &str, old: u16) -> u16 {
        let mut new = 0;
        wait_for(30, &format!("a replica to take over {key}'s slot"), || {
            let slot: Option<i64> = self
                .live_port()
                .and_then(|p| query(p, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key)));
            match slot.and_then(|s| self.master_of_slot(s)) {
                Some(p) if p != old && self.is_running(p) => {
                    new = p;
                    cluster_ok(p)
                }
                _ => false,
            }
        });
        new
    }

    /// Starts a killed node again (it rejoins, as a replica if its slots
    /// moved on).
    pub fn restart(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port == port) {
            if !node.is_running() {
                node.spawn();
            }
        }
    }

    fn is_running(&self, port: u16) -> bool {
        self.nodes.iter().any(|n| n.port == port && n.is_running())
    }

    fn live_port(&self) -> Option<u16> {
        self.nodes.iter().find(|n| n.is_running()).map(|n| n.port)
    }

    /// From `CLUSTER SLOTS` as a running node sees it.
    fn master_of_slot(&self, slot: i64) -> Option<u16> {
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            let Some(mut con) = connect(node.port) else {
                continue;
            };
            let Ok(ranges) = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query::<Vec<redis::Value>>(&mut con)
            else {
                continue;
            };
            for range in ranges {
                let redis::Value::Array(parts) = range else {
                    continue;
                };
                let num = |v: Option<&redis::Value>| match v {
                    Some(redis::Value::Int(i)) => Some(*i),
                    _ => None,
                };
                let (Some(lo), Some(hi)) = (num(parts.first()), num(parts.get(1))) else {
                    continue;
                };
                if (lo..=hi).contains(&slot) {
                    if let Some(redis::Value::Array(master)) = parts.get(2) {
                        return num(master.get(1)).and_then(|p| u16::try_from(p).ok());
                    }
                }
            }
            return None;
        }
        None
    }

    fn wait_healthy(&self) {
        let first = self.nodes[0].port;
        wait_for(30, "the cluster to serve all 16384 slots", || {
            cluster_ok(first)
                && query::<String>(first, redis::cmd("CLUSTER").arg("INFO"))
                    .and_then(|i| info_field(&i, "cluster_slots_ok"))
                    .as_deref()
                    == Some("16384")
        });
        // A replica that never finished its first sync cannot be promoted.
        wait_for(30, "every master to have a synced replica", || {
            let masters = self.masters();
            masters.len() == 3
                && self
                    .nodes
                    .iter()
                    .filter(|n| !masters.contains(&n.port))
                    .all(|n| {
                        query::<String>(n.port, redis::cmd("INFO").arg("replication"))
                            .and_then(|i| info_field(&i, "master_link_status"))
                            .as_deref()
                            == Some("up")
                    })
        });
        wait_for(30, "every node to agree the cluster is ok", || {
            self.nodes.iter().all(|n| cluster_ok(n.port))
        });
        self.wait_replicated();
    }

    fn wait_replicated(&self) {
        let masters = self.masters();
        let replicas: Vec<u16> = self
            .ports()
            .into_iter()
            .filter(|p| !masters.contains(p))
            .collect();
        wait_replicated(&masters, &replicas);
    }
}

fn cli_bin() -> String {
    std::env::var("REDIS_CLI_BIN").unwrap_or_else(|_| "redis-cli".to_string())
}

fn role(port: u16) -> Option<String> {
    query::<String>(port, redis::cmd("INFO").arg("replication"))
        .and_then(|i| info_field(&i, "role"))
}

fn cluster_ok(port: u16) -> bool {
    query::<String>(port, redis::cmd("CLUSTER").arg("INFO"))
        .and_then(|i| info_field(&i, "cluster_state"))
        .as_deref()
        == Some("ok")
}
