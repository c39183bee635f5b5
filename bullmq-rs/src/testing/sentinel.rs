//! A throwaway Sentinel set: one master, one replica and three sentinels,
//! all `redis-server` processes on loopback. Tests kill the master to make
//! the sentinels promote the replica.

use super::node::{info_field, query, wait_for, wait_replicated, NodeProcess};

/// A master, its replica and three sentinels; every process is killed on
/// drop.
#[derive(Debug)]
pub struct RedisSentinelSet {
    name: String,
    servers: Vec<NodeProcess>,
    sentinels: Vec<NodeProcess>,
    _dir: tempfile::TempDir,
}

impl RedisSentinelSet {
    /// Starts the set monitoring a master called `name` (quorum 2, down
    /// after 2 s: a loaded CI machine must not look dead) and waits until the sentinels know the replica and each
    /// other.
    pub fn start(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the sentinel set");
        let server_args = [
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
            "--repl-diskless-sync-delay",
            "0",
        ];
        let master = NodeProcess::start(dir.path(), &server_args);
        let master_port = master.port.to_string();
        let mut replica_args = server_args.to_vec();
        replica_args.extend(["--replicaof", "127.0.0.1", &master_port]);
        let replica = NodeProcess::start(dir.path(), &replica_args);
        wait_for(30, "the replica to sync with the master", || {
            query::<String>(replica.port, redis::cmd("INFO").arg("replication"))
                .and_then(|i| info_field(&i, "master_link_status"))
                .as_deref()
                == Some("up")
        });
        wait_replicated(&[master.port], &[replica.port]);
        let sentinels: Vec<NodeProcess> = (0..3)
            .map(|_| {
                NodeProcess::start_with(
                    dir.path(),
                    &["{dir}/sentinel.conf", "--sentinel"],
                    |node_dir, port| {
                        let conf = format!(
                            "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                             sentinel monitor {name} 127.0.0.1 {master_port} 2\n\
                             sentinel down-after-milliseconds {name} 2000\n\
                             sentinel failover-timeout {name} 5000\n",
                            dir = node_dir.display(),
                        );
                        std::fs::write(node_dir.join("sentinel.conf"), conf)
                            .expect("write sentinel.conf");
                    },
                )
            })
            .collect();
        let set = RedisSentinelSet {
            name: name.to_string(),
            servers: vec![master, replica],
            sentinels,
            _dir: dir,
        };
        wait_for(
            30,
            "every sentinel to know the replica and the others",
            || {
                set.sentinels.iter().all(|s| {
                    let replicas: Option<Vec<redis::Value>> = query(
                        s.port,
                        redis::cmd("SENTINEL").arg("REPLICAS").arg(&set.name),
                    );
                    let others: Option<Vec<redis::Value>> = query(
                        s.port,
                        redis::cmd("SENTINEL").arg("SENTINELS").arg(&set.name),
                    );
                    replicas.is_some_and(|r| r.len() == 1) && others.is_some_and(|o| o.len() == 2)
                })
            },
        );
        set
    }

    /// `redis+sentinel://` with the three sentinels and the master name.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{}", hosts.join(","), self.name)
    }

    /// The master name the sentinels monitor.
    pub fn master_name(&self) -> &str {
        &self.name
    }

    /// The port of the master the sentinels name now.
    pub fn master_port(&self) -> u16 {
        self.sentinels
            .iter()
            .filter(|s| s.is_running())
            .find_map(|s| {
                let addr: Option<(String, String)> = query(
                    s.port,
                    redis::cmd("SENTINEL")
                        .arg("GET-MASTER-ADDR-BY-NAME")
                        .arg(&self.name),
                );
                addr.and_then(|(_, p)| p.parse().ok())
            })
            .expect("a sentinel names the master")
    }

    /// The ports of the two data servers (master and replica, in start
    /// order).
    pub fn server_ports(&self) -> Vec<u16> {
        self.servers.iter().map(|s| s.port).collect()
    }

    /// Kills (SIGKILL) the current master; returns its port.
    pub fn kill_master(&mut self) -> u16 {
        let port = self.master_port();
        if let Some(node) = self.servers.iter_mut().find(|n| n.port == port) {
            node.kill();
        }
        port
    }

    /// Waits until the sentinels name a master other than `old` and that
    /// server says it is a master; returns its port.
    pub fn wait_for_new_master(&self, old: u16) -> u16 {
        let mut new = 0;
        wait_for(60, "the sentinels to promote the replica", || {
            let port = self.master_port();
            new = port;
            port != old
                && query::<String>(port, redis::cmd("INFO").arg("replication"))
                    .and_then(|i| info_field(&i, "role"))
                    .as_deref()
                    == Some("master")
        });
        new
    }

    /// Starts a killed data server again (the sentinels turn it into a
    /// replica of the new master).
    pub fn restart(&mut self, port: u16) {
        if let Some(node) = self.servers.iter_mut().find(|n| n.port == port) {
            if !node.is_running() {
                node.spawn();
            }
        }
    }
}
