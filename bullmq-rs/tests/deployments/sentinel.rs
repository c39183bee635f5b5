//! A Sentinel set (master, replica, 3 sentinels): jobs through the master
//! the sentinels name, a failover under load, a wrong master name.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bullmq_wire::testing::RedisSentinelSet;
use bullmq_wire::{Connection, RedisOptions};

use crate::scenario::failover_under_load;

async fn failover(acks: Option<u32>) -> crate::scenario::Outcome {
    let set = Arc::new(Mutex::new(RedisSentinelSet::start("jobs")));
    let url = set.lock().unwrap().url();
    let mut options = RedisOptions::new(url);
    if let Some(n) = acks {
        options = options.with_replica_acks(n, Duration::from_secs(2));
    }
    let conn = Connection::connect(options).await.unwrap();
    let first = set.lock().unwrap().master_port();
    assert_eq!(
        conn.serving_address(),
        format!("127.0.0.1:{first}"),
        "the connection uses the master the sentinels name"
    );
    let fault = set.clone();
    let outcome = failover_under_load(&conn, "orders", 300, 300, move || {
        let mut set = fault.lock().unwrap();
        let old = set.kill_master();
        let new = set.wait_for_new_master(old);
        assert_ne!(new, old);
        // The old master comes back; the sentinels make it a replica of the
        // new one (until then no replica can ack).
        set.restart(old);
    })
    .await;
    // On a loaded machine the sentinels may fail over again (back to the
    // restarted node): whichever server they name now, the connection
    // follows it once a command meets the old one.
    let queue = bullmq_wire::Queue::new("orders", &conn).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let _ = queue.ping().await;
        let now = set.lock().unwrap().master_port();
        if conn.serving_address() == format!("127.0.0.1:{now}") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the connection serves {} while the sentinels name port {now}",
            conn.serving_address()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    outcome.report(&format!("sentinel failover, replica acks {acks:?}"));
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_with_replica_acks_loses_no_acknowledged_add() {
    let outcome = failover(Some(1)).await;
    assert!(
        outcome.lost.is_empty(),
        "with replica acks every acknowledged add completes; lost {:?}",
        outcome.lost
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_without_replica_acks_keeps_serving() {
    let outcome = failover(None).await;
    assert!(outcome.acked_after >= 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_name_the_sentinels_do_not_know_is_a_clear_error() {
    let set = RedisSentinelSet::start("jobs");
    let url = set.url().replace("/jobs", "/nosuch");
    let err = Connection::open(&url).await.expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("nosuch"),
        "the error names the master: {text}"
    );
}
