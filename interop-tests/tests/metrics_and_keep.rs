//! Scenario 8: what a worker records and what it keeps. With metrics on,
//! Node's `getMetrics('completed' | 'failed')` reads the same counts and
//! per-minute points for jobs our worker finished as for jobs a Node worker
//! finished (retried attempts are not counted); and the keep policies
//! (`removeOnComplete` / `removeOnFail` as `true`, a count, `{count}`,
//! `{age}`, `{age, limit}`), set on the worker or on the job (the job's
//! wins), leave exactly the jobs a Node worker leaves.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bullmq_wire::{Connection, Worker, WorkerOptions};
use interop_tests::{behave, cfg, keep_jobs, queue_name, run, Lang, Process, RedisServer};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Node,
    Rust,
}

/// A worker of either language with `extra` driver settings (BullMQ's
/// names), concurrency 1 so jobs finish in the order they were added.
enum AnyWorker {
    Node(Process),
    Rust(Worker),
}

impl AnyWorker {
    async fn start(server: &RedisServer, q: &str, side: Side, extra: &Value) -> AnyWorker {
        match side {
            Side::Node => {
                let mut c = cfg(server, q, json!({"concurrency": 1, "drainDelay": 1}));
                c.as_object_mut()
                    .unwrap()
                    .extend(extra.as_object().unwrap().clone());
                AnyWorker::Node(Process::start(Lang::Node, "worker", c).await)
            }
            Side::Rust => {
                let conn = Connection::open(&server.url()).await.unwrap();
                let opts = WorkerOptions {
                    drain_delay: Duration::from_secs(1),
                    remove_on_complete: keep_jobs(&extra["removeOnComplete"]),
                    remove_on_fail: keep_jobs(&extra["removeOnFail"]),
                    metrics_max_data_points: extra["metrics"]["maxDataPoints"]
                        .as_u64()
                        .map(|n| n as u32),
                    ..Default::default()
                };
                AnyWorker::Rust(Worker::start(q, &conn, opts, behave).await.unwrap())
            }
        }
    }

    async fn stop(self) {
        match self {
            AnyWorker::Node(p) => drop(p.stop().await),
            AnyWorker::Rust(w) => w.close().await,
        }
    }
}

fn is_final(v: &Value) -> bool {
    v["event"] == "completed" || v["event"] == "failed"
}

/// Adds jobs from Node; returns their ids.
async fn add(server: &RedisServer, q: &str, jobs: &[Value]) -> Vec<String> {
    let out = run(Lang::Node, "add", cfg(server, q, json!({"jobs": jobs}))).await;
    out["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn echo(opts: Value) -> Value {
    json!({"name": "echo", "data": {}, "opts": opts})
}

fn fail(opts: Value) -> Value {
    json!({"name": "fail", "data": {"times": 9}, "opts": opts})
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Metrics points are per wall-clock minute: make sure the next 20 s stay
/// in one minute (a run takes a few), so a run never adds a point of its
/// own by crossing one.
async fn room_in_this_minute() {
    let into = now_ms() % 60_000;
    if into > 40_000 {
        tokio::time::sleep(Duration::from_millis(60_000 - into + 50)).await;
    }
}

/// Node's `getMetrics(type)` with the timestamp replaced.
async fn metrics(server: &RedisServer, q: &str, kind: &str) -> Value {
    let out = run(
        Lang::Node,
        "control",
        cfg(server, q, json!({"op": "getMetrics", "type": kind})),
    )
    .await;
    let mut m = out["result"].clone();
    let ts = m["meta"]["prevTS"].as_i64().unwrap();
    assert!(
        ts == 0 || (ts - now_ms() as i64).abs() < 60_000,
        "prevTS {ts} is not now"
    );
    m["meta"]["prevTS"] = json!(if ts == 0 { "none" } else { "<ts>" });
    m
}

/// Our `get_metrics` against Node's `getMetrics`, read at the same moment.
async fn same_as_node(server: &RedisServer, q: &str) {
    let conn = bullmq_wire::Connection::open(&server.url()).await.unwrap();
    let queue = bullmq_wire::Queue::new(q, &conn).await.unwrap();
    for (kind, state) in [
        ("completed", bullmq_wire::JobState::Completed),
        ("failed", bullmq_wire::JobState::Failed),
    ] {
        let node = run(
            Lang::Node,
            "control",
            cfg(server, q, json!({"op": "getMetrics", "type": kind})),
        )
        .await["result"]
            .clone();
        let m = queue.get_metrics(state, 0, -1).await.unwrap();
        let ours = json!({"meta": {"count": m.count, "prevTS": m.prev_ts, "prevCount": m.prev_count}, "data": m.data, "count": m.points});
        assert_eq!(ours, node, "{kind} metrics, ours against Node's reading");
    }
}

/// Two rounds of jobs through a worker with metrics on; between them the
/// metrics look as if the queue had been idle for ages (prevTS 1), so the
/// next finished job pushes a full set of points. Returns Node's reading of
/// (completed, failed) after each round.
async fn metrics_run(server: &RedisServer, side: Side) -> Vec<(Value, Value)> {
    let q = queue_name();
    let mut events = Process::start(Lang::Node, "events", cfg(server, &q, json!({}))).await;
    let worker =
        AnyWorker::start(server, &q, side, &json!({"metrics": {"maxDataPoints": 5}})).await;
    let retried = json!({"name": "fail", "data": {"times": 1}, "opts": {"attempts": 2}});
    let round1 = [
        echo(json!({})),
        fail(json!({})),
        echo(json!({})),
        retried,
        echo(json!({})),
        fail(json!({})),
    ];
    add(server, &q, &round1).await;
    events.wait_count(T, 6, is_final).await;
    let mut readings = vec![(
        metrics(server, &q, "completed").await,
        metrics(server, &q, "failed").await,
    )];
    same_as_node(server, &q).await;

    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    for kind in ["completed", "failed"] {
        let _: () = redis::cmd("HSET")
            .arg(format!("bull:{q}:metrics:{kind}"))
            .arg("prevTS")
            .arg(1)
            .query_async(&mut con)
            .await
            .unwrap();
    }
    add(
        server,
        &q,
        &[echo(json!({})), fail(json!({})), echo(json!({}))],
    )
    .await;
    events.wait_count(T, 9, is_final).await;
    readings.push((
        metrics(server, &q, "completed").await,
        metrics(server, &q, "failed").await,
    ));
    same_as_node(server, &q).await;
    worker.stop().await;
    events.stop().await;
    readings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_reads_the_metrics_our_worker_keeps() {
    let server = RedisServer::start();
    room_in_this_minute().await;
    let minute = now_ms() / 60_000;
    let (node, rust) = tokio::join!(
        metrics_run(&server, Side::Node),
        metrics_run(&server, Side::Rust)
    );
    let crossed = now_ms() / 60_000 != minute;
    assert_eq!(
        rust, node,
        "metrics (rust vs node worker); the runs crossed a minute boundary: {crossed}"
    );
    // and what they are: round 1 counts 4 completed (the retried job once)
    // and 2 failed, with no points yet; round 2 pushes one full set
    let meta = |count: u64, prev: u64| json!({"count": count, "prevTS": "<ts>", "prevCount": prev});
    assert_eq!(
        rust[0].0,
        json!({"meta": meta(4, 0), "data": [], "count": 0})
    );
    assert_eq!(
        rust[0].1,
        json!({"meta": meta(2, 0), "data": [], "count": 0})
    );
    assert_eq!(
        rust[1].0,
        json!({"meta": meta(6, 4), "data": [0, 0, 0, 0, 4], "count": 5})
    );
    assert_eq!(
        rust[1].1,
        json!({"meta": meta(3, 2), "data": [0, 0, 0, 0, 2], "count": 5})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_metrics_unless_enabled() {
    let server = RedisServer::start();
    let q = queue_name();
    let conn = Connection::open(&server.url()).await.unwrap();
    let mut events = Process::start(Lang::Node, "events", cfg(&server, &q, json!({}))).await;
    let worker = Worker::start(&q, &conn, WorkerOptions::default(), behave)
        .await
        .unwrap();
    add(&server, &q, &[echo(json!({})), fail(json!({}))]).await;
    events.wait_count(T, 2, is_final).await;
    worker.close().await;
    events.stop().await;
    let none =
        json!({"meta": {"count": 0, "prevTS": "none", "prevCount": 0}, "data": [], "count": 0});
    assert_eq!(metrics(&server, &q, "completed").await, none);
    assert_eq!(metrics(&server, &q, "failed").await, none);
}

/// Runs `rounds` of jobs (added from Node, up to 9 in all so ids sort like
/// numbers) through a worker with `settings`; between rounds waits `gap`.
/// Returns, per job id, its state (null once removed), and the members of
/// `completed` and `failed`.
async fn kept(
    server: &RedisServer,
    side: Side,
    settings: &Value,
    rounds: &[Vec<Value>],
    gap: Duration,
) -> Value {
    let q = queue_name();
    let mut events = Process::start(Lang::Node, "events", cfg(server, &q, json!({}))).await;
    let worker = AnyWorker::start(server, &q, side, settings).await;
    let (mut ids, mut finals) = (Vec::new(), 0);
    for (i, round) in rounds.iter().enumerate() {
        if i > 0 {
            // the age of the earlier round must pass: real time, not a guess
            tokio::time::sleep(gap).await;
        }
        ids.extend(add(server, &q, round).await);
        finals += round.len();
        events.wait_count(T, finals, is_final).await;
    }
    worker.stop().await;
    events.stop().await;
    assert!(ids.len() <= 9);
    let out = run(Lang::Node, "inspect", cfg(server, &q, json!({"ids": ids}))).await;
    let states: serde_json::Map<String, Value> = ids
        .iter()
        .map(|id| (id.clone(), out["jobs"][id]["state"].clone()))
        .collect();
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let mut sets = json!({"states": states});
    for kind in ["completed", "failed"] {
        let mut members: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("bull:{q}:{kind}"))
            .arg(0)
            .arg(-1)
            .query_async(&mut con)
            .await
            .unwrap();
        members.sort();
        sets[kind] = json!(members);
    }
    sets
}

/// The same rounds through a Node worker and ours; the kept sets must be
/// equal, and equal to `expected` (completed, failed).
async fn same_kept(
    settings: Value,
    rounds: Vec<Vec<Value>>,
    gap: Duration,
    expected: (&[&str], &[&str]),
) {
    let server = RedisServer::start();
    let (node, rust) = tokio::join!(
        kept(&server, Side::Node, &settings, &rounds, gap),
        kept(&server, Side::Rust, &settings, &rounds, gap)
    );
    assert_eq!(
        rust, node,
        "kept jobs (rust vs node worker), settings {settings}"
    );
    assert_eq!(
        node["completed"],
        json!(expected.0),
        "completed kept: {node}"
    );
    assert_eq!(node["failed"], json!(expected.1), "failed kept: {node}");
    for (id, state) in node["states"].as_object().unwrap() {
        let listed = node["completed"].as_array().unwrap().contains(&json!(id))
            || node["failed"].as_array().unwrap().contains(&json!(id));
        assert_eq!(
            !state.is_null(),
            listed,
            "job {id}: hash and finished set disagree: {node}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_counts_set_on_the_worker() {
    let settings = json!({"removeOnComplete": {"count": 2}, "removeOnFail": {"count": 1}});
    let o = || json!({});
    let jobs = vec![
        echo(o()),
        fail(o()),
        echo(o()),
        echo(o()),
        fail(o()),
        echo(o()),
        fail(o()),
        echo(o()),
    ];
    same_kept(settings, vec![jobs], Duration::ZERO, (&["6", "8"], &["7"])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_counts_set_on_the_job() {
    let o = || json!({"removeOnComplete": {"count": 2}, "removeOnFail": 1});
    let jobs = vec![
        echo(o()),
        fail(o()),
        echo(o()),
        echo(o()),
        fail(o()),
        echo(o()),
        fail(o()),
        echo(o()),
    ];
    same_kept(json!({}), vec![jobs], Duration::ZERO, (&["6", "8"], &["7"])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_policy_wins_over_the_workers() {
    // worker: remove completed at once, keep 2 failed (a Node Worker takes
    // only `{count, age, limit}` here: `true` breaks its moveToFinished)
    let settings = json!({"removeOnComplete": {"count": 0}, "removeOnFail": {"count": 2}});
    let jobs = vec![
        echo(json!({})),                          // 1: removed (worker's count 0)
        echo(json!({"removeOnComplete": false})), // 2: kept
        echo(json!({"removeOnComplete": 3})),     // 3: kept, set trimmed to 3
        echo(json!({})),                          // 4: removed
        fail(json!({"removeOnFail": false})),     // 5: kept for now
        fail(json!({})),                          // 6: worker's count 2
        fail(json!({})),                          // 7: worker's count 2: 5 goes
        fail(json!({"removeOnFail": true})),      // 8: removed
    ];
    same_kept(
        settings,
        vec![jobs],
        Duration::ZERO,
        (&["2", "3"], &["6", "7"]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_by_age_set_on_the_worker() {
    let settings = json!({"removeOnComplete": {"age": 1}, "removeOnFail": {"age": 1, "count": 5}});
    let o = || json!({});
    let rounds = vec![
        vec![echo(o()), fail(o()), echo(o())],
        vec![echo(o()), fail(o())],
    ];
    same_kept(
        settings,
        rounds,
        Duration::from_millis(1_300),
        (&["4"], &["5"]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_by_age_set_on_the_job_with_a_limit() {
    // the age trim of a later job removes old jobs whatever their own
    // policy, at most `limit` per finish, newest of the old ones first
    let aged = || json!({"removeOnComplete": {"age": 1, "limit": 2}});
    let rounds = vec![
        vec![
            echo(aged()),
            echo(json!({})),
            echo(aged()),
            fail(json!({"removeOnFail": {"age": 1}})),
        ],
        vec![echo(aged()), fail(json!({"removeOnFail": {"age": 1}}))],
    ];
    same_kept(
        json!({}),
        rounds,
        Duration::from_millis(1_300),
        (&["1", "5"], &["6"]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_count_on_the_job_keeps_everything() {
    // BullMQ reads `removeOnComplete: -1` as `{count: -1}`: not 0, so the
    // job is kept, and not positive, so nothing is trimmed
    let settings = json!({"removeOnComplete": {"count": 0}, "removeOnFail": {"count": 0}});
    let jobs = vec![
        echo(json!({"removeOnComplete": -1})),
        fail(json!({"removeOnFail": -1})),
        echo(json!({"removeOnComplete": {"count": -1}})),
        echo(json!({"removeOnComplete": -5})),
    ];
    same_kept(
        settings,
        vec![jobs],
        Duration::ZERO,
        (&["1", "3", "4"], &["2"]),
    )
    .await;
}
