//! The gateway on a Redis Cluster and on a Sentinel set: calls with
//! progress and results before and after the queue's master is killed
//! (SIGKILL) and a replica takes over; a call in flight across the kill
//! gets exactly one final response; a client that drops its socket and
//! re-attaches with `rpc.subscribe` gets its result; `/healthz` reports
//! where Redis is; a cluster refuses keyspace notifications and untagged
//! prefixes at startup.
//!
//! The gateway acknowledges calls once a replica has the job
//! (`replica_acks = 1`), so an acknowledged job survives the failover.
//! Fixtures block (processes, polling): they run in `block_in_place`, so
//! the gateway and the worker keep running on the other thread meanwhile.

use std::time::Duration;

use bullmq_wire::testing::{RedisCluster, RedisSentinelSet};
use bullmq_wire::{Connection, RedisOptions, Worker, WorkerOptions};
use futures::StreamExt;
use gateway::auth::AuthConfig;
use gateway::config::NotifyMode;
use gateway::Config;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{demo_worker_with, Client, Gw, SECRET};

/// Hash-tagged, so that each queue's keys share one cluster slot.
const PREFIX: &str = "{bull}";
/// A key in the slot of every queue under `PREFIX`.
const SLOT_KEY: &str = "{bull}:demo:id";
/// How long anything may take across a failover (promotion, lock expiry,
/// stalled check, the job's rerun).
const FAILOVER_WAIT: Duration = Duration::from_secs(90);

/// What the scenario needs from a deployment.
trait Deployment {
    fn url(&self) -> String;
    /// Kills (SIGKILL) the master serving the `demo` queue; its port.
    fn kill_queue_master(&mut self) -> u16;
    /// Waits for a replica to take over from `old`; the new master's port.
    fn wait_for_new_master(&self, old: u16) -> u16;
    /// Starts the killed node again (it comes back as a replica).
    fn restart(&mut self, port: u16);
    /// `/healthz` shows the queue served by the master on `port`.
    fn healthy_on(health: &Value, port: u16) -> bool;
}

impl Deployment for RedisCluster {
    fn url(&self) -> String {
        RedisCluster::url(self)
    }
    fn kill_queue_master(&mut self) -> u16 {
        self.kill_master_for(SLOT_KEY)
    }
    fn wait_for_new_master(&self, old: u16) -> u16 {
        self.wait_for_failover(SLOT_KEY, old)
    }
    fn restart(&mut self, port: u16) {
        RedisCluster::restart(self, port)
    }
    fn healthy_on(health: &Value, _port: u16) -> bool {
        // Each queue's master answers a PING (the address is the seed the
        // commands went to, not the queue's node).
        health["redis_queues"]["demo"]["latency_ms"]
            .as_f64()
            .is_some()
    }
}

impl Deployment for RedisSentinelSet {
    fn url(&self) -> String {
        RedisSentinelSet::url(self)
    }
    fn kill_queue_master(&mut self) -> u16 {
        self.kill_master()
    }
    fn wait_for_new_master(&self, old: u16) -> u16 {
        RedisSentinelSet::wait_for_new_master(self, old)
    }
    fn restart(&mut self, port: u16) {
        RedisSentinelSet::restart(self, port)
    }
    fn healthy_on(health: &Value, port: u16) -> bool {
        health["redis_address"]
            .as_str()
            .is_some_and(|a| a.ends_with(&format!(":{port}")))
    }
}

/// The gateway's config on `url`: `demo`, the tagged prefix, replica acks.
fn config(url: &str) -> Config {
    let mut c = Config::new(url, AuthConfig::hs256(SECRET.to_vec()));
    c.prefix = PREFIX.to_string();
    c.services.add_list("demo").unwrap();
    c.limits.shutdown_grace = Duration::from_secs(5);
    c.jobs.replica_acks = 1;
    c.jobs.replica_ack_timeout_ms = 2000;
    c
}

/// The `demo` worker with short locks, so that a job whose worker lost
/// its master is found stalled and run again within seconds.
async fn worker(url: &str) -> Worker {
    let conn = Connection::connect(RedisOptions::new(url).with_prefix(PREFIX))
        .await
        .expect("the worker connects");
    demo_worker_with(
        &conn,
        WorkerOptions {
            concurrency: 8,
            lock_duration: Duration::from_secs(4),
            stalled_interval: Duration::from_secs(2),
            max_stalled_count: 5,
            ..Default::default()
        },
    )
    .await
}

/// The next frame before `deadline` (a failover may keep a socket silent
/// longer than `support::WAIT`).
async fn recv_by(c: &mut Client, deadline: Instant, what: &str) -> Value {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, c.ws.next())
            .await
            .unwrap_or_else(|_| panic!("no frame for {what} in time"));
        match msg {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str()).expect("JSON from the gateway")
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("waiting for {what}: expected a text frame, got {other:?}"),
        }
    }
}

/// The response to `id` before `deadline`, and the notifications before it.
async fn response_by(c: &mut Client, id: &Value, deadline: Instant) -> (Value, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        let v = recv_by(c, deadline, &format!("the response to {id}")).await;
        if v.get("method").is_none() && v.get("id") == Some(id) {
            return (v, before);
        }
        before.push(v);
    }
}

/// A `demo.sleep` call with a client job key: progress `{step, of}` for
/// each step, then `{slept}`.
async fn sleep_call(c: &mut Client, id: i64, key: &str, ms: u64, steps: u64) {
    c.send(json!({"jsonrpc": "2.0", "id": id, "method": "demo.sleep",
                  "params": {"ms": ms, "steps": steps}, "jobId": key}))
        .await;
    let (r, before) = response_by(c, &json!(id), Instant::now() + FAILOVER_WAIT).await;
    assert_eq!(r["result"], json!({"slept": ms}), "{key}: {r}");
    let steps_seen: Vec<&Value> = before
        .iter()
        .filter(|n| n["method"] == "rpc.progress" && n["params"]["id"] == id)
        .map(|n| &n["params"]["progress"]["step"])
        .collect();
    // Bursts are coalesced (the last step and the end may be read as
    // one), so: some steps, each once, in order.
    let steps_seen: Vec<u64> = steps_seen.iter().filter_map(|s| s.as_u64()).collect();
    assert!(
        !steps_seen.is_empty()
            && steps_seen.windows(2).all(|w| w[0] < w[1])
            && steps_seen.iter().all(|s| (1..=steps).contains(s)),
        "{key}: progress before the result: {before:?}"
    );
}

/// Echo calls until one is acknowledged: while the failed master has not
/// come back as a replica, replica acks time out and calls are answered
/// -32004, retryable (the job may be on the master: a client retries with
/// the same key). Returns how many were refused.
async fn until_calls_are_acked(c: &mut Client, id: i64) -> usize {
    let deadline = Instant::now() + FAILOVER_WAIT;
    let mut refused = 0;
    loop {
        c.send(json!({"jsonrpc": "2.0", "id": id, "method": "demo.echo",
                      "params": {"try": refused}, "jobId": format!("probe-{refused}")}))
            .await;
        let (r, _) = response_by(c, &json!(id), deadline).await;
        if r.get("result").is_some() {
            assert_eq!(r["result"], json!({"try": refused}), "{r}");
            return refused;
        }
        assert_eq!(r["error"]["code"], -32004, "only retryable refusals: {r}");
        assert_eq!(r["error"]["data"]["retryable"], true, "{r}");
        refused += 1;
        assert!(Instant::now() < deadline, "calls still refused: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `/healthz` until `pred` holds on its JSON body (status 200).
async fn healthz_until(gw: &Gw, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + FAILOVER_WAIT;
    loop {
        let (status, body) = gw.http_get("/healthz").await;
        if let Ok(health) = serde_json::from_str::<Value>(&body) {
            if status == 200 && pred(&health) {
                return health;
            }
        }
        assert!(Instant::now() < deadline, "/healthz never {what}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Calls before, across and after a failover of the `demo` queue's
/// master; a socket that left re-attaches; exactly one final response for
/// the call that was in flight.
async fn across_a_failover<D: Deployment>(d: &mut D, what: &str) {
    let url = d.url();
    let _worker = worker(&url).await;
    let gw = Gw::start(config(&url)).await;
    let mut c = gw.client("alice").await;

    sleep_call(&mut c, 1, "before", 300, 3).await;
    let r = c.call(2, "demo.echo", json!({"where": what})).await;
    assert_eq!(r["result"], json!({"where": what}), "{r}");

    // In flight on this socket across the kill, with room for a rerun.
    let in_flight = json!(10);
    c.send(
        json!({"jsonrpc": "2.0", "id": in_flight, "method": "demo.sleep",
                  "params": {"ms": 3000, "steps": 6}, "ack": true,
                  "options": {"attempts": 5, "backoff": 100}}),
    )
    .await;
    let accepted = c.recv().await;
    assert_eq!(accepted["method"], "rpc.accepted", "{accepted}");
    let in_flight_job = accepted["params"]["jobId"].clone();
    // One whose job ends (progress, then completion) while the queue has
    // no master: its writes fail, and it is found stalled and run again.
    let mut ending = gw.client("alice").await;
    ending
        .send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.sleep",
                     "params": {"ms": 1500, "steps": 1}, "ack": true,
                     "options": {"attempts": 5, "backoff": 100}}))
        .await;
    let accepted = ending.recv().await;
    assert_eq!(accepted["method"], "rpc.accepted", "{accepted}");
    // Another socket submits and leaves; it re-attaches after the failover.
    let mut leaver = gw.client("alice").await;
    leaver
        .send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.sleep",
                     "params": {"ms": 2000, "steps": 4}, "ack": true,
                     "options": {"attempts": 5, "backoff": 100}}))
        .await;
    let accepted = leaver.recv().await;
    assert_eq!(accepted["method"], "rpc.accepted", "{accepted}");
    let left_job = accepted["params"]["jobId"].clone();
    drop(leaver);
    // The in-flight job is running when its master dies.
    let running = c.recv().await;
    assert_eq!(running["method"], "rpc.progress", "{running}");
    assert_eq!(running["params"]["jobId"], in_flight_job, "{running}");

    let old = tokio::task::block_in_place(|| d.kill_queue_master());
    let killed_at = Instant::now();
    // A call made while the queue has no master.
    let mut during = gw.client("alice").await;
    during
        .send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo",
                     "params": {"during": true}, "jobId": "during"}))
        .await;
    let new = tokio::task::block_in_place(|| d.wait_for_new_master(old));
    println!(
        "{what}: master {old} killed, {new} took over in {:?}",
        killed_at.elapsed()
    );

    // Exactly one final response for the call in flight: its result, or
    // an error the client may retry.
    let (done, _) = response_by(&mut c, &in_flight, killed_at + FAILOVER_WAIT).await;
    println!(
        "{what}: the call in flight was answered {:?} after the kill: {done}",
        killed_at.elapsed()
    );
    if done.get("result").is_some() {
        assert_eq!(done["result"], json!({"slept": 3000}), "{done}");
    } else {
        assert_eq!(done["error"]["data"]["retryable"], true, "{done}");
    }
    assert_eq!(done["jobId"], in_flight_job, "{done}");
    let (ended, _) = response_by(&mut ending, &json!(1), killed_at + FAILOVER_WAIT).await;
    println!(
        "{what}: the call whose job ended without a master was answered {:?} after the kill: {ended}",
        killed_at.elapsed()
    );
    if ended.get("result").is_some() {
        assert_eq!(ended["result"], json!({"slept": 1500}), "{ended}");
    } else {
        assert_eq!(ended["error"]["data"]["retryable"], true, "{ended}");
    }
    // The call made without a master: answered once, its result or a
    // retryable refusal.
    let (answer, _) = response_by(&mut during, &json!(1), killed_at + FAILOVER_WAIT).await;
    println!(
        "{what}: the call made without a master was answered {:?} after the kill: {answer}",
        killed_at.elapsed()
    );
    if answer.get("result").is_some() {
        assert_eq!(answer["result"], json!({"during": true}), "{answer}");
    } else {
        assert_eq!(answer["error"]["code"], -32004, "{answer}");
        assert_eq!(answer["error"]["data"]["retryable"], true, "{answer}");
    }

    // The new master has no replica yet, so no add can be confirmed by
    // one: the call is refused, retryable, and says that the master has
    // the job (before the fix it claimed nothing was enqueued, and the job
    // ran anyway).
    let deadline = Instant::now() + FAILOVER_WAIT;
    let refusal = loop {
        c.send(json!({"jsonrpc": "2.0", "id": 15, "method": "demo.echo",
                      "params": {"unreplicated": true}, "jobId": "unreplicated"}))
            .await;
        let (r, _) = response_by(&mut c, &json!(15), deadline).await;
        assert_eq!(r["error"]["code"], -32004, "no replica, no ack: {r}");
        assert_eq!(r["error"]["data"]["retryable"], true, "{r}");
        if r["error"]["data"]["enqueued"] == true {
            break r;
        }
        // Not the master yet (the gateway is finding the new one).
        assert!(
            Instant::now() < deadline,
            "never reached the new master: {r}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("{what}: without a replica: {refusal}");
    let st = c
        .call(16, "rpc.status", json!({"jobId": refusal["jobId"]}))
        .await;
    assert!(
        st["result"]["state"].is_string(),
        "enqueued: the job exists: {st}"
    );
    let created = st["result"]["timestamps"]["created"].clone();

    tokio::task::block_in_place(|| d.restart(old));
    healthz_until(&gw, "showed the new master", |h| D::healthy_on(h, new)).await;

    // New calls with progress and results on the new master (once the
    // restarted node is its replica, replica acks succeed again).
    let refused = until_calls_are_acked(&mut c, 19).await;
    println!("{what}: {refused} calls refused (retryable) until the old master was a replica");
    sleep_call(&mut c, 20, "after", 300, 3).await;
    // The refused call, sent again with its key, finds its job (not a
    // second one) and gets its result.
    c.send(json!({"jsonrpc": "2.0", "id": 21, "method": "demo.echo",
                  "params": {"unreplicated": true, "again": true}, "jobId": "unreplicated"}))
        .await;
    let (again, _) = response_by(&mut c, &json!(21), Instant::now() + FAILOVER_WAIT).await;
    assert_eq!(again["result"], json!({"unreplicated": true}), "{again}");
    assert_eq!(again["jobId"], refusal["jobId"]);
    let st = c
        .call(22, "rpc.status", json!({"jobId": refusal["jobId"]}))
        .await;
    assert_eq!(
        st["result"]["timestamps"]["created"], created,
        "one job: {st}"
    );

    // The socket that left re-attaches on a new connection.
    let mut back = gw.client("alice").await;
    back.send(
        json!({"jsonrpc": "2.0", "id": "re", "method": "rpc.subscribe",
                     "params": {"jobId": left_job}}),
    )
    .await;
    let (r, _) = response_by(&mut back, &json!("re"), Instant::now() + FAILOVER_WAIT).await;
    assert_eq!(r["result"], json!({"slept": 2000}), "re-attach: {r}");
    assert_eq!(r["jobId"], left_job);

    // The call in flight is not answered a second time: once its job is
    // finished, nothing more for it arrives while other calls go through.
    let deadline = Instant::now() + FAILOVER_WAIT;
    loop {
        let st = c
            .call(30, "rpc.status", json!({"jobId": in_flight_job}))
            .await;
        let state = st["result"]["state"].clone();
        if state == "completed" || state == "failed" {
            break;
        }
        assert!(Instant::now() < deadline, "the job never finished: {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let quiet_until = Instant::now() + Duration::from_secs(3);
    let mut n = 40;
    while Instant::now() < quiet_until {
        c.send(json!({"jsonrpc": "2.0", "id": n, "method": "demo.echo", "params": {"n": n}}))
            .await;
        let (r, before) = response_by(&mut c, &json!(n), Instant::now() + FAILOVER_WAIT).await;
        assert_eq!(r["result"], json!({"n": n}), "{r}");
        assert!(
            before.iter().all(|f| f.get("id") != Some(&in_flight)),
            "a second answer to the call in flight: {before:?}"
        );
        ending
            .send(json!({"jsonrpc": "2.0", "id": n, "method": "demo.echo", "params": {"n": n}}))
            .await;
        let (r, before) = response_by(&mut ending, &json!(n), Instant::now() + FAILOVER_WAIT).await;
        assert_eq!(r["result"], json!({"n": n}), "{r}");
        assert!(
            before.iter().all(|f| f.get("id") != Some(&json!(1))),
            "a second answer to the call whose job ended without a master: {before:?}"
        );
        during
            .send(json!({"jsonrpc": "2.0", "id": n, "method": "demo.echo", "params": {"n": n}}))
            .await;
        let (r, before) = response_by(&mut during, &json!(n), Instant::now() + FAILOVER_WAIT).await;
        assert_eq!(r["result"], json!({"n": n}), "{r}");
        assert!(
            before.iter().all(|f| f.get("id") != Some(&json!(1))),
            "a second answer to the call made without a master: {before:?}"
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.shutdown().await;
}

/// On a cluster: calls across the failover of the queue's master, and
/// `/healthz` by queue before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_calls_across_a_failover() {
    let mut cluster = tokio::task::block_in_place(RedisCluster::start);
    let url = cluster.url();
    // /healthz first, on a gateway of its own.
    let gw = Gw::start(config(&url)).await;
    let health = healthz_until(&gw, "showed the demo queue's latency", |h| {
        h["redis_queues"]["demo"]["latency_ms"].as_f64().is_some()
    })
    .await;
    assert_eq!(health["redis"], "ok", "{health}");
    assert_eq!(health["notifier"]["mode"], "events", "{health}");
    assert!(
        health["redis_address"]
            .as_str()
            .is_some_and(|a| !a.is_empty()),
        "{health}"
    );
    gw.shutdown().await;

    across_a_failover(&mut cluster, "cluster").await;
}

/// On a Sentinel set: the same, with the sentinels promoting the replica;
/// `/healthz` names the new master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_calls_across_a_failover() {
    let mut set = tokio::task::block_in_place(|| RedisSentinelSet::start("gwmaster"));
    let url = set.url();
    let first = set.master_port();
    let gw = Gw::start(config(&url)).await;
    healthz_until(&gw, "named the master", |h| {
        h["redis_address"]
            .as_str()
            .is_some_and(|a| a.ends_with(&format!(":{first}")))
    })
    .await;
    gw.shutdown().await;

    across_a_failover(&mut set, "sentinel").await;

    let now = set.master_port();
    assert_ne!(now, first);
    // A gateway started now finds the new master through the sentinels.
    let gw = Gw::start(config(&url)).await;
    healthz_until(&gw, "named the new master", |h| {
        h["redis_address"]
            .as_str()
            .is_some_and(|a| a.ends_with(&format!(":{now}")))
    })
    .await;
    gw.shutdown().await;
}

/// A cluster refuses, at startup and with a reason: keyspace
/// notifications (they stay on the node whose key changed) and a prefix
/// without a hash tag (a queue's keys would spread over slots).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_refuses_keyspace_mode_and_untagged_prefixes() {
    let cluster = tokio::task::block_in_place(RedisCluster::start);
    let url = cluster.url();

    let mut keyspace = config(&url);
    keyspace.notify = NotifyMode::Keyspace;
    let err = gateway::Gateway::bind(keyspace)
        .await
        .expect_err("keyspace notifications on a cluster are refused")
        .to_string();
    assert!(
        err.contains("keyspace") && err.contains("events"),
        "names the cause and the fix: {err}"
    );

    let mut untagged = config(&url);
    untagged.prefix = "bull".to_string();
    let err = gateway::Gateway::bind(untagged)
        .await
        .expect_err("an untagged prefix on a cluster is refused")
        .to_string();
    assert!(
        err.contains("hash tag") && err.contains("{bull}"),
        "names the cause and the fix: {err}"
    );

    // Auto mode and a tagged prefix start, reading events streams.
    let mut auto = config(&url);
    auto.notify = NotifyMode::Auto;
    let gw = Gw::start(auto).await;
    let health = healthz_until(&gw, "came up", |_| true).await;
    assert_eq!(health["notifier"]["mode"], "events", "{health}");
    gw.shutdown().await;
}
