//! A 6-node Redis Cluster: queues on every master, refusals that come
//! before any write, flows in one slot, failover under load.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bullmq_wire::testing::RedisCluster;
use bullmq_wire::{
    Connection, FlowJob, FlowProducer, JobOptions, JobState, Queue, RedisOptions, Worker,
    WorkerOptions,
};
use serde_json::json;

use crate::scenario::{failover_under_load, final_state};

async fn connect(cluster: &RedisCluster, prefix: &str) -> Connection {
    Connection::connect(RedisOptions::new(cluster.url()).with_prefix(prefix))
        .await
        .expect("connect to the cluster")
}

fn unique(stem: &str) -> String {
    format!("{stem}{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Keys on every master, summed.
fn keys_on_masters(cluster: &RedisCluster) -> i64 {
    cluster
        .masters()
        .iter()
        .map(|port| {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
            let mut con = client.get_connection().unwrap();
            redis::cmd("DBSIZE").query::<i64>(&mut con).unwrap()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_with_their_own_hash_tags_spread_over_every_master() {
    let cluster = RedisCluster::start();
    let conn = connect(&cluster, "bull").await;
    // Queue names with their own hash tag, until one lands on each master.
    let mut by_master = std::collections::HashMap::new();
    while by_master.len() < 3 {
        let name = format!("{{{}}}", unique("q"));
        let port = cluster.node_for_key(&format!("bull:{name}:id"));
        by_master.entry(port).or_insert(name);
    }
    for (port, name) in &by_master {
        let queue = Queue::new(name, &conn).await.unwrap();
        let id = queue
            .add("t", &json!({"on": port}), JobOptions::default())
            .await
            .unwrap();
        let opts = WorkerOptions {
            name: Some(format!("w-{port}")),
            ..Default::default()
        };
        let worker = Worker::start(name, &conn, opts, |job| async move { Ok(job.data) })
            .await
            .unwrap();
        assert_eq!(
            final_state(&queue, &id).await,
            JobState::Completed,
            "job on master {port} completes"
        );
        let job = queue.get_job(&id).await.unwrap().unwrap();
        assert_eq!(job.returnvalue, Some(json!({"on": port})));
        // The job's hash is on the master that owns the queue's slot.
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        let mut con = client.get_connection().unwrap();
        let exists: bool = redis::cmd("EXISTS")
            .arg(format!("bull:{name}:{id}"))
            .query(&mut con)
            .unwrap();
        assert!(exists, "queue {name}'s job lives on master {port}");
        let workers = queue.get_workers().await.unwrap();
        assert_eq!(
            workers
                .iter()
                .filter_map(|w| w.name.clone())
                .collect::<Vec<_>>(),
            vec![format!("w-{port}")],
            "get_workers asks the queue's own master"
        );
        assert!(queue.ping().await.is_ok());
        worker.close().await;
    }
    let masters: HashSet<u16> = by_master.keys().copied().collect();
    assert_eq!(masters.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untagged_queues_and_flows_across_slots_are_refused_before_any_write() {
    let cluster = RedisCluster::start();
    let conn = connect(&cluster, "bull").await;
    let err = Queue::new("emails", &conn).await.expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("hash tag") && text.contains("{bull}") && text.contains("{emails}"),
        "the error says what to do: {text}"
    );
    let flow =
        FlowJob::new("parent", "{a}", json!({})).child(FlowJob::new("child", "{b}", json!({})));
    let err = FlowProducer::new(&conn)
        .add(flow)
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("another cluster slot") && text.contains("hash tag"),
        "the error says what to do: {text}"
    );
    assert_eq!(keys_on_masters(&cluster), 0, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_under_a_tagged_prefix_runs_in_one_slot() {
    let cluster = RedisCluster::start();
    let conn = connect(&cluster, "{bull}").await;
    let (parents, children) = (unique("parents"), unique("children"));
    let flow = FlowJob::new("sum", &parents, json!({}))
        .child(FlowJob::new("n", &children, json!({"n": 2})))
        .child(FlowJob::new("n", &children, json!({"n": 3})));
    let node = FlowProducer::new(&conn).add(flow).await.unwrap();
    let child_worker = Worker::start(
        &children,
        &conn,
        WorkerOptions::default(),
        |job| async move { Ok(job.data["n"].clone()) },
    )
    .await
    .unwrap();
    let parent_worker = Worker::start(
        &parents,
        &conn,
        WorkerOptions::default(),
        |job| async move { Ok(json!({"children": job.id})) },
    )
    .await
    .unwrap();
    let queue = Queue::new(&parents, &conn).await.unwrap();
    let id = node.id.clone();
    assert_eq!(
        final_state(&queue, &id).await,
        JobState::Completed,
        "the parent runs after its children"
    );
    child_worker.close().await;
    parent_worker.close().await;
}

/// Kills the master of a queue's slot while 4 producers add and a worker
/// serves; returns what was lost.
async fn failover(acks: Option<u32>) -> crate::scenario::Outcome {
    let cluster = Arc::new(Mutex::new(RedisCluster::start()));
    let url = cluster.lock().unwrap().url();
    let mut options = RedisOptions::new(url).with_prefix("{bull}");
    if let Some(n) = acks {
        options = options.with_replica_acks(n, Duration::from_secs(2));
    }
    let conn = Connection::connect(options).await.unwrap();
    let name = unique("orders");
    let slot_key = format!("{{bull}}:{name}:id");
    let fault = cluster.clone();
    let outcome = failover_under_load(&conn, &name, 300, 300, move || {
        let mut cluster = fault.lock().unwrap();
        let old = cluster.kill_master_for(&slot_key);
        let new = cluster.wait_for_failover(&slot_key, old);
        assert_ne!(new, old, "a replica took over the slot");
        // The dead master comes back as the new master's replica, as an
        // operator would restart it; until then no replica can ack.
        cluster.restart(old);
    })
    .await;
    outcome.report(&format!("cluster failover, replica acks {acks:?}"));
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_with_replica_acks_loses_no_acknowledged_add() {
    let outcome = failover(Some(1)).await;
    assert!(
        outcome.lost.is_empty(),
        "with replica acks every acknowledged add completes; lost {:?}",
        outcome.lost
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_without_replica_acks_keeps_serving_and_counts_what_it_lost() {
    // Redis replicates asynchronously: adds the dead master acknowledged but
    // had not yet sent on are gone. The count is printed, not hidden; the
    // scenario asserts every add after the failover completes.
    let outcome = failover(None).await;
    assert!(outcome.acked_after >= 300);
}
