//! The real Node BullMQ 6.7.0 (an ioredis `Cluster`, or ioredis with
//! `sentinels`) and our worker on the same queues of a Redis Cluster and of
//! a Sentinel set:
//!
//! * the parity scenarios (Node producer / our worker, our producer / Node
//!   worker) and the mixed fleet (Rust, Node and Python BullMQ 3.4.4 with a
//!   redis-py `RedisCluster` or `Sentinel.master_for` client) run once on
//!   each deployment;
//! * failover under load: a Node producer adds jobs with its own ids while
//!   a Node worker and a Rust worker (each its own process) serve the queue
//!   and a Rust producer adds with replica acks (`WAIT 1`); the master of the
//!   queue's slot (or the Sentinel master) is killed with SIGKILL, the
//!   failover awaited, the dead node restarted, and the producers go on.
//!   Every acknowledged add made with replica acks must complete; the Node
//!   producer's adds have no `WAIT`, so what it loses in the failover is
//!   counted and printed, not asserted (adds acknowledged after the failover
//!   must all complete). The Rust worker must serve jobs added after the
//!   failover, and no process may exit.
//!
//! Run with `--nocapture` to see the numbers.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bullmq_wire::{Connection, JobOptions, JobState, Queue, RedisOptions};
use interop_tests::scenarios::mixed_fleet::languages_share_one_queue_exactly_once;
use interop_tests::scenarios::parity::{
    rust_producer_matches_node_producer, rust_worker_matches_node_worker,
};
use interop_tests::{
    cfg, connect, queue_name, Deployment, Lang, Process, RedisCluster, RedisSentinelSet,
};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_node_python_and_rust_share_queues() {
    let cluster = RedisCluster::start();
    rust_worker_matches_node_worker(&cluster).await;
    println!("cluster: node producer, rust worker = node worker: ok");
    rust_producer_matches_node_producer(&cluster).await;
    println!("cluster: rust producer, node worker = node producer: ok");
    languages_share_one_queue_exactly_once(&cluster, &[Lang::Rust, Lang::Node, Lang::Python]).await;
    println!("cluster: mixed fleet (rust, node, python), 3000 jobs exactly once: ok");
    node_raw_dump_sees_our_keys(&cluster).await;
    println!("cluster: node raw dump (SCAN on every master) sees our keys: ok");
}

/// The Node driver's `raw` command (SCAN over every master of a cluster)
/// finds the keys of jobs we added, with their values.
async fn node_raw_dump_sees_our_keys(at: &dyn Deployment) {
    let q = queue_name();
    let queue = Queue::new(&q, &connect(at).await).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            queue
                .add("echo", &json!({"i": i}), JobOptions::default())
                .await
                .unwrap(),
        );
    }
    let dump = interop_tests::run(Lang::Node, "raw", cfg(at, &q, json!({}))).await;
    let keys = &dump["keys"];
    let base = format!("{}:{q}", at.prefix());
    let mut wait: Vec<String> = keys[format!("{base}:wait")]["value"]
        .as_array()
        .unwrap_or_else(|| panic!("no wait list in {dump}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    wait.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(wait, expected);
    for (i, id) in ids.iter().enumerate() {
        let job = &keys[format!("{base}:{id}")];
        assert_eq!(job["type"], "hash", "{dump}");
        assert_eq!(job["value"]["data"], json!({"i": i}).to_string(), "{dump}");
    }
    assert!(keys[format!("{base}:meta")].is_object(), "{dump}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_node_python_and_rust_share_queues() {
    let set = RedisSentinelSet::start("interopmaster");
    rust_worker_matches_node_worker(&set).await;
    println!("sentinel: node producer, rust worker = node worker: ok");
    rust_producer_matches_node_producer(&set).await;
    println!("sentinel: rust producer, node worker = node producer: ok");
    languages_share_one_queue_exactly_once(&set, &[Lang::Rust, Lang::Node, Lang::Python]).await;
    println!("sentinel: mixed fleet (rust, node, python), 3000 jobs exactly once: ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_failover_under_load_with_node_and_rust() {
    let cluster = RedisCluster::start();
    let at = At {
        url: cluster.url(),
        prefix: cluster.prefix(),
    };
    let q = queue_name();
    // Every key of the queue has the `{bull}` hash tag: one slot.
    let key = format!("{}:{q}:wait", at.prefix);
    let masters_before = cluster.masters().len();
    let cluster = Arc::new(Mutex::new(cluster));
    let fixture = cluster.clone();
    let fault = move || {
        let mut c = fixture.lock().unwrap();
        let old = c.kill_master_for(&key);
        let new = c.wait_for_failover(&key, old);
        println!("cluster: killed master {old} of {key}'s slot; {new} took over");
        old
    };
    let fixture = cluster.clone();
    let restart = move |old: u16| fixture.lock().unwrap().restart(old);
    let outcome = failover_under_load(&at, &q, fault, restart).await;
    outcome.report("cluster");
    outcome.check();
    assert_eq!(cluster.lock().unwrap().masters().len(), masters_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_under_load_with_node_and_rust() {
    let set = RedisSentinelSet::start("failovermaster");
    let at = At {
        url: set.url(),
        prefix: set.prefix(),
    };
    let q = queue_name();
    let set = Arc::new(Mutex::new(set));
    let fixture = set.clone();
    let fault = move || {
        let mut s = fixture.lock().unwrap();
        let old = s.kill_master();
        let new = s.wait_for_new_master(old);
        println!("sentinel: killed master {old}; the sentinels promoted {new}");
        old
    };
    let fixture = set.clone();
    let restart = move |old: u16| fixture.lock().unwrap().restart(old);
    let outcome = failover_under_load(&at, &q, fault, restart).await;
    outcome.report("sentinel");
    outcome.check();
}

/// A deployment by URL and prefix, so the fixture itself can be moved into
/// the blocking fault.
struct At {
    url: String,
    prefix: &'static str,
}

impl Deployment for At {
    fn url(&self) -> String {
        self.url.clone()
    }
    fn prefix(&self) -> &'static str {
        self.prefix
    }
}

/// Adds by our producer, with replica acks, retrying an id until it is
/// acknowledged.
struct RustProducer {
    acked: Arc<Mutex<Vec<String>>>,
    errors: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    lanes: Vec<tokio::task::JoinHandle<()>>,
}

impl RustProducer {
    fn start(queue: Queue) -> RustProducer {
        let acked: Arc<Mutex<Vec<String>>> = Arc::default();
        let errors: Arc<AtomicUsize> = Arc::default();
        let stop: Arc<AtomicBool> = Arc::default();
        let lanes = (0..2)
            .map(|lane| {
                let (queue, acked, errors, stop) =
                    (queue.clone(), acked.clone(), errors.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let id = format!("r{lane}-{n}");
                        n += 1;
                        let opts = JobOptions {
                            job_id: Some(id.clone()),
                            ..Default::default()
                        };
                        loop {
                            match queue.add("count", &json!({"n": n}), opts.clone()).await {
                                Ok(_) => {
                                    acked.lock().unwrap().push(id.clone());
                                    break;
                                }
                                Err(_) if stop.load(Ordering::SeqCst) => return,
                                Err(_) => {
                                    errors.fetch_add(1, Ordering::SeqCst);
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                }
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        RustProducer {
            acked,
            errors,
            stop,
            lanes,
        }
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    async fn stop(self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        for lane in self.lanes {
            let _ = tokio::time::timeout(Duration::from_secs(30), lane).await;
        }
        let acked = self.acked.lock().unwrap().clone();
        (acked, self.errors.load(Ordering::SeqCst))
    }
}

fn line_id(line: &Value) -> Option<String> {
    line["id"]
        .as_str()
        .map(str::to_string)
        .or_else(|| line["id"].as_i64().map(|n| n.to_string()))
}

/// The ids a producer process acknowledged, in order.
fn acked_ids(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|v| v["acked"].as_str().map(str::to_string))
        .collect()
}

/// Waits until `p` has printed at least `n` acknowledged adds.
async fn wait_acked(p: &mut Process, n: usize, secs: u64) {
    let have = acked_ids(&p.seen).len();
    if have < n {
        p.wait_count(Duration::from_secs(secs), n, |v| v.get("acked").is_some())
            .await;
    }
}

async fn wait_until(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a failover run saw.
#[derive(Debug, Default)]
struct Outcome {
    node_acked: usize,
    node_acked_after: usize,
    node_add_failures: usize,
    /// Node adds acknowledged (no WAIT) that never completed.
    node_lost: Vec<String>,
    node_lost_after: usize,
    rust_acked: usize,
    rust_acked_after: usize,
    rust_add_errors: usize,
    /// Rust adds acknowledged with replica acks that never completed.
    rust_lost: Vec<String>,
    /// Completions printed by each worker.
    by_worker: HashMap<&'static str, usize>,
    /// Jobs added after the failover that each worker completed.
    after_by_worker: HashMap<&'static str, usize>,
    /// Ids whose handler ran to the end more than once, with the workers
    /// (a completion the failover lost, or that failed to be written while
    /// the master was down, is run again once its lock expires).
    repeated: Vec<(String, Vec<&'static str>)>,
    /// Processes that exited before being asked to stop, or did not close
    /// cleanly.
    exited: Vec<String>,
}

impl Outcome {
    fn report(&self, what: &str) {
        println!(
            "{what}: node producer (no WAIT): {} adds acknowledged ({} after the failover), {} LOST ({} of them after the failover), {} failed add attempts retried",
            self.node_acked, self.node_acked_after, self.node_lost.len(), self.node_lost_after, self.node_add_failures
        );
        println!(
            "{what}: rust producer (replica acks 1, 2 s): {} adds acknowledged ({} after the failover), {} lost, {} failed add attempts retried",
            self.rust_acked,
            self.rust_acked_after,
            self.rust_lost.len(),
            self.rust_add_errors
        );
        println!(
            "{what}: completions printed by worker {:?}, of jobs added after the failover {:?}; {} ids run to the end more than once {:?}; processes that exited: {:?}",
            self.by_worker, self.after_by_worker, self.repeated.len(), self.repeated, self.exited
        );
        if !self.node_lost.is_empty() {
            let sample: Vec<&String> = self.node_lost.iter().take(10).collect();
            println!("{what}: node ids lost (first 10): {sample:?}");
        }
    }

    fn check(&self) {
        assert!(
            self.exited.is_empty(),
            "processes exited: {:?}",
            self.exited
        );
        assert!(
            self.rust_lost.is_empty(),
            "adds acknowledged with replica acks were lost: {:?}",
            self.rust_lost
        );
        assert_eq!(
            self.node_lost_after, 0,
            "node adds acknowledged after the failover never completed"
        );
        assert!(
            self.after_by_worker.get("rust").copied().unwrap_or(0) > 0,
            "the Rust worker served nothing added after the failover: {:?}",
            self.after_by_worker
        );
        assert!(self.node_acked_after > 0 && self.rust_acked_after > 0);
    }
}

/// The run: workers and producers on `q`, `fault` (blocking: kill and wait
/// for the failover; returns the dead port) in the middle, then `restart`
/// of the dead node, then more adds; every acknowledged id is then looked up.
async fn failover_under_load(
    at: &At,
    q: &str,
    fault: impl FnOnce() -> u16 + Send + 'static,
    restart: impl FnOnce(u16) + Send + 'static,
) -> Outcome {
    // Short locks so that a job whose completion the failover lost is
    // picked up again quickly.
    let worker_cfg = |name: &str| {
        cfg(
            at,
            q,
            json!({"name": name, "concurrency": 8, "lockDuration": 4000, "stalledInterval": 2000, "maxStalledCount": 5}),
        )
    };
    let mut node_worker = Process::start(Lang::Node, "worker", worker_cfg("node")).await;
    let mut rust_worker = Process::start(Lang::Rust, "worker", worker_cfg("rust")).await;
    let mut producer = Process::start(
        Lang::Node,
        "produce",
        cfg(at, q, json!({"idPrefix": "n", "lanes": 2, "pauseMs": 5})),
    )
    .await;
    let options = RedisOptions::new(at.url())
        .with_prefix(at.prefix())
        .with_replica_acks(1, Duration::from_secs(2));
    let conn = Connection::connect(options)
        .await
        .expect("connect with acks");
    let rust_producer = RustProducer::start(Queue::new(q, &conn).await.unwrap());

    wait_acked(&mut producer, 300, 60).await;
    wait_until(60, "rust adds before the fault", || {
        rust_producer.count() >= 100
    })
    .await;

    let old = tokio::task::spawn_blocking(fault).await.expect("fault ran");
    producer.drain();
    let node_at_fault = acked_ids(&producer.seen).len();
    let rust_at_fault = rust_producer.count();
    tokio::task::spawn_blocking(move || restart(old))
        .await
        .expect("restart ran");

    wait_acked(&mut producer, node_at_fault + 300, 90).await;
    wait_until(90, "rust adds after the fault", || {
        rust_producer.count() >= rust_at_fault + 100
    })
    .await;

    let mut exited = Vec::new();
    for (name, p) in [
        ("node producer", &mut producer),
        ("node worker", &mut node_worker),
        ("rust worker", &mut rust_worker),
    ] {
        if let Some(status) = p.exited() {
            exited.push(format!("{name}: {status}"));
        }
    }

    let producer_lines = producer.stop().await;
    let (rust_acked, rust_add_errors) = rust_producer.stop().await;
    let node_acked = acked_ids(&producer_lines);
    let node_after: HashSet<&String> = node_acked[node_at_fault..].iter().collect();
    let rust_after: HashSet<&String> = rust_acked[rust_at_fault..].iter().collect();

    // Every acknowledged job should complete; the ones that do not within
    // the deadline are lost.
    let queue = Queue::new(q, &connect(at).await).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut pending: Vec<String> = node_acked.iter().chain(&rust_acked).cloned().collect();
    while !pending.is_empty() && tokio::time::Instant::now() < deadline {
        let mut still = Vec::new();
        for id in pending {
            if !matches!(queue.get_job_state(&id).await, Ok(JobState::Completed)) {
                still.push(id);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    for (name, p) in [
        ("node worker", &mut node_worker),
        ("rust worker", &mut rust_worker),
    ] {
        if let Some(status) = p.exited() {
            exited.push(format!("{name}: {status}"));
        }
    }
    let mut by_worker = HashMap::new();
    let mut after_by_worker = HashMap::new();
    let mut completions: HashMap<String, Vec<&'static str>> = HashMap::new();
    for (name, w) in [("node", node_worker), ("rust", rust_worker)] {
        let lines = w.stop().await;
        if !lines.iter().any(|v| v["closed"] == true) {
            exited.push(format!("{name} worker did not close cleanly"));
        }
        for line in lines.iter().filter(|v| v["event"] == "completed") {
            let Some(id) = line_id(line) else { continue };
            *by_worker.entry(name).or_default() += 1;
            if node_after.contains(&id) || rust_after.contains(&id) {
                *after_by_worker.entry(name).or_default() += 1;
            }
            completions.entry(id).or_default().push(name);
        }
    }
    if !producer_lines.iter().any(|v| v["closed"] == true) {
        exited.push("node producer did not close cleanly".into());
    }

    let rust_ids: HashSet<&String> = rust_acked.iter().collect();
    let (rust_lost, node_lost): (Vec<String>, Vec<String>) =
        pending.into_iter().partition(|id| rust_ids.contains(id));
    Outcome {
        node_acked: node_acked.len(),
        node_acked_after: node_after.len(),
        node_add_failures: producer_lines
            .iter()
            .filter(|v| v.get("addFailed").is_some())
            .count(),
        node_lost_after: node_lost
            .iter()
            .filter(|id| node_after.contains(id))
            .count(),
        node_lost,
        rust_acked: rust_acked.len(),
        rust_acked_after: rust_after.len(),
        rust_add_errors,
        rust_lost,
        by_worker,
        after_by_worker,
        repeated: completions
            .into_iter()
            .filter(|(_, w)| w.len() > 1)
            .collect(),
        exited,
    }
}
