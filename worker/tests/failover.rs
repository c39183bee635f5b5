//! The worker runtime on a Redis Cluster and behind Sentinel: jobs running
//! when the master is killed (-9) finish after the failover, with their
//! latest progress, and the runtime keeps serving without a restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bullmq_wire::testing::{RedisCluster, RedisSentinelSet};
use bullmq_wire::{Connection, JobOptions, JobState, Queue, RedisOptions, WorkerOptions};
use serde_json::{json, Value};
use worker_runtime::{Runtime, RuntimeOptions};

mod support;
use support::{stepping_registry, wait_all};

const WAIT: Duration = Duration::from_secs(90);
const JOBS: usize = 4;
const STEPS: u64 = 15;

/// Runs jobs through the runtime, calls `fault` (blocking) once they all
/// reported progress, then checks that every job completed and that a job
/// added after the fault completes too.
async fn jobs_survive(conn: Connection, fault: impl FnOnce() + Send + 'static) {
    let queue = Queue::new("steps", &conn).await.unwrap();
    let opts = RuntimeOptions {
        worker: WorkerOptions {
            concurrency: JOBS,
            lock_duration: Duration::from_secs(5),
            stalled_interval: Duration::from_secs(2),
            max_stalled_count: 5,
            ..Default::default()
        },
        ..Default::default()
    };
    let runtime = Runtime::start(&conn, stepping_registry(STEPS), opts)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..JOBS {
        ids.push(
            queue
                .add("run", &json!({}), JobOptions::default())
                .await
                .unwrap(),
        );
    }
    wait_all(&queue, &ids, WAIT, "first progress", |j| {
        j.progress != json!(0)
    })
    .await;
    tokio::task::spawn_blocking(fault)
        .await
        .expect("the fault ran");
    wait_all(&queue, &ids, WAIT, "finishing", |j| j.finished_on.is_some()).await;
    for id in &ids {
        let job = queue.get_job(id).await.unwrap().unwrap();
        assert_eq!(
            queue.get_job_state(id).await.unwrap(),
            JobState::Completed,
            "job {id} failed: {:?}",
            job.failed_reason
        );
        assert_eq!(job.returnvalue, Some(Value::from("done")));
        assert_eq!(job.progress, json!(STEPS), "job {id}: the latest progress");
        let (_, lines) = queue.get_job_logs(id, 0, -1, true).await.unwrap();
        println!("job {id}: {lines} log lines of {STEPS} (a job run again after the failover logs again; a write the dead master had not replicated is gone)");
    }
    // Still serving, with no restart: a job added now completes.
    let late = loop {
        match queue.add("run", &json!({}), JobOptions::default()).await {
            Ok(id) => break id,
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait_all(
        &queue,
        std::slice::from_ref(&late),
        WAIT,
        "the late job finishing",
        |j| j.finished_on.is_some(),
    )
    .await;
    assert_eq!(
        queue.get_job_state(&late).await.unwrap(),
        JobState::Completed
    );
    runtime.close().await;
}

// Once flaky (a job missing from the cluster after the failover): the
// fixture returned while a replica, though linked, had not yet received any
// write, so the promoted replica started empty. `RedisCluster::start` now
// waits until every replica holds its master's writes. Adds wait for one
// replica too, as a deployment that must not lose an acknowledged job would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_jobs_survive_a_cluster_failover() {
    let cluster = Arc::new(Mutex::new(RedisCluster::start()));
    let url = cluster.lock().unwrap().url();
    let conn = Connection::connect(
        RedisOptions::new(url)
            .with_prefix("{bull}")
            .with_replica_acks(1, Duration::from_secs(5)),
    )
    .await
    .unwrap();
    // The closure holds a clone: dropping the fixture kills every node.
    let fault = cluster.clone();
    jobs_survive(conn, move || {
        let mut cluster = fault.lock().unwrap();
        let key = "{bull}:steps:id";
        let old = cluster.kill_master_for(key);
        cluster.wait_for_failover(key, old);
        cluster.restart(old);
    })
    .await;
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_jobs_survive_a_sentinel_failover() {
    let set = Arc::new(Mutex::new(RedisSentinelSet::start("jobs")));
    let url = set.lock().unwrap().url();
    let conn =
        Connection::connect(RedisOptions::new(url).with_replica_acks(1, Duration::from_secs(5)))
            .await
            .unwrap();
    let fault = set.clone();
    jobs_survive(conn, move || {
        let mut set = fault.lock().unwrap();
        let old = set.kill_master();
        set.wait_for_new_master(old);
        set.restart(old);
    })
    .await;
    drop(set);
}
