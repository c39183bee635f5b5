//! Scenario 7: limits. A worker `limiter {max, duration}` on our worker
//! lets at most `max` jobs start per window, also when a Node worker with the
//! same limiter shares the queue (one `limiter` key for both); a global rate
//! limit and a global concurrency set from Node are honoured by our workers
//! (a sampler reading `active` never sees more than the limit), and lifting
//! the global concurrency lets them run wider again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bullmq_wire::{Connection, JobState, Queue, Worker, WorkerOptions};
use interop_tests::{behave, cfg, queue_name, run, Lang, Process, RedisServer};
use serde_json::json;

const T: Duration = Duration::from_secs(90);

/// Adds `n` jobs named `name` with `data` from Node.
async fn add(server: &RedisServer, q: &str, n: usize, name: &str, data: serde_json::Value) {
    let jobs: Vec<_> = (0..n)
        .map(|_| json!({"name": name, "data": data}))
        .collect();
    run(
        Lang::Node,
        "add",
        cfg(server, q, json!({"jobs": jobs, "bulk": true})),
    )
    .await;
}

async fn wait_completed(queue: &Queue, n: u64) {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let c = queue
            .get_job_counts(&[JobState::Completed, JobState::Failed])
            .await
            .unwrap();
        assert_eq!(c[&JobState::Failed], 0, "a job failed");
        if c[&JobState::Completed] >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} jobs completed",
            c[&JobState::Completed]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `processedOn` of every completed job (the `now` of the fetch that
/// started it, from whichever client), sorted.
async fn starts(queue: &Queue) -> Vec<i64> {
    let mut t: Vec<i64> = queue
        .get_jobs(&[JobState::Completed], 0, -1, true)
        .await
        .unwrap()
        .iter()
        .map(|j| j.processed_on.unwrap())
        .collect();
    t.sort();
    t
}

/// With fixed windows of `duration` each opened by a start, jobs `i` and
/// `i + max` can never share a window: they start at least one window
/// apart (less a little clock skew between clients and Redis). And the
/// limiter must not starve the queue: n jobs take about (n/max - 1) windows.
fn assert_rate(starts: &[i64], max: usize, duration: i64) {
    let slack = 30;
    for (i, pair) in starts.windows(max + 1).enumerate() {
        let gap = pair[max] - pair[0];
        assert!(
            gap >= duration - slack,
            "jobs {i} and {} started {gap} ms apart (max {max} per {duration} ms): {starts:?}",
            i + max
        );
    }
    let windows = starts.len().div_ceil(max) as i64;
    let span = starts[starts.len() - 1] - starts[0];
    assert!(
        span < (windows - 1) * duration + 3_000,
        "too slow for the limit: {span} ms for {} jobs: {starts:?}",
        starts.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_limiter_caps_starts_per_window() {
    let server = RedisServer::start();
    let q = queue_name();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    add(&server, &q, 8, "count", json!({})).await;
    let limiter = json!({"max": 2, "duration": 1000});
    let worker = Process::start(
        Lang::Rust,
        "worker",
        cfg(&server, &q, json!({"concurrency": 4, "limiter": limiter})),
    )
    .await;
    wait_completed(&queue, 8).await;
    worker.stop().await;
    assert_rate(&starts(&queue).await, 2, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_rust_workers_share_one_limiter() {
    let server = RedisServer::start();
    let q = queue_name();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    add(&server, &q, 10, "count", json!({})).await;
    let c = json!({"concurrency": 4, "limiter": {"max": 2, "duration": 1000}, "drainDelay": 1});
    // both connected before either runs: ready lines first, then the jobs
    let rust = Process::start(Lang::Rust, "worker", cfg(&server, &q, c.clone())).await;
    let node = Process::start(Lang::Node, "worker", cfg(&server, &q, c)).await;
    wait_completed(&queue, 10).await;
    let (rust, node) = (rust.stop().await, node.stop().await);
    let done =
        |lines: &[serde_json::Value]| lines.iter().filter(|v| v["event"] == "completed").count();
    assert_eq!(done(&rust) + done(&node), 10);
    assert!(done(&rust) > 0, "the rust worker never got a slot");
    assert_rate(&starts(&queue).await, 2, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_rate_limit_set_from_node_is_honoured() {
    let server = RedisServer::start();
    let q = queue_name();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    run(
        Lang::Node,
        "control",
        cfg(
            &server,
            &q,
            json!({"op": "setGlobalRateLimit", "max": 3, "duration": 800}),
        ),
    )
    .await;
    add(&server, &q, 9, "count", json!({})).await;
    let opts = WorkerOptions {
        concurrency: 5,
        ..Default::default()
    };
    let worker = Worker::start(&q, &conn, opts, behave).await.unwrap();
    wait_completed(&queue, 9).await;
    worker.close().await;
    assert_rate(&starts(&queue).await, 3, 800);
}

/// Reads `LLEN active` in a tight loop until stopped; returns the highest
/// value seen.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(u64, u64)>,
}

impl Sampler {
    async fn start(server: &RedisServer, q: &str) -> Sampler {
        let client = redis::Client::open(server.url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let key = format!("bull:{q}:active");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let (mut max, mut samples) = (0u64, 0u64);
            while !flag.load(Ordering::Relaxed) {
                let n: u64 = redis::cmd("LLEN")
                    .arg(&key)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                max = max.max(n);
                samples += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            (max, samples)
        });
        Sampler { stop, task }
    }

    async fn max(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let (max, samples) = self.task.await.unwrap();
        assert!(samples > 100, "the sampler hardly ran ({samples} samples)");
        max
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_concurrency_set_from_node_is_honoured() {
    let server = RedisServer::start();
    let q = queue_name();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    run(
        Lang::Node,
        "control",
        cfg(&server, &q, json!({"op": "setGlobalConcurrency", "n": 2})),
    )
    .await;

    // two of our workers with 4 slots each, in two processes
    let opts = WorkerOptions {
        concurrency: 4,
        drain_delay: Duration::from_secs(1),
        ..Default::default()
    };
    let local = Worker::start(&q, &conn, opts, behave).await.unwrap();
    let other = Process::start(
        Lang::Rust,
        "worker",
        cfg(&server, &q, json!({"concurrency": 4, "drainDelay": 1})),
    )
    .await;
    let sampler = Sampler::start(&server, &q).await;
    add(&server, &q, 12, "sleep", json!({"ms": 150})).await;
    wait_completed(&queue, 12).await;
    let max = sampler.max().await;
    assert_eq!(max, 2, "active jobs at most (global concurrency 2)");

    // lifted: the same workers run more than two at once
    run(
        Lang::Node,
        "control",
        cfg(&server, &q, json!({"op": "removeGlobalConcurrency"})),
    )
    .await;
    let sampler = Sampler::start(&server, &q).await;
    add(&server, &q, 8, "sleep", json!({"ms": 400})).await;
    wait_completed(&queue, 20).await;
    let max = sampler.max().await;
    assert!(
        max > 2,
        "still limited after removeGlobalConcurrency: at most {max} active"
    );
    local.close().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_ttl_reads_as_node_reads_it() {
    let server = RedisServer::start();
    let q = queue_name();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    let node = |max: Option<u64>| {
        let c = cfg(
            &server,
            &q,
            json!({"op": "getRateLimitTtl", "maxJobs": max}),
        );
        async move {
            run(Lang::Node, "control", c).await["result"]
                .as_i64()
                .unwrap()
        }
    };
    // no limiter key at all
    assert_eq!(
        queue.get_rate_limit_ttl(None).await.unwrap(),
        node(None).await
    );
    // a limit set with Queue.rateLimit: the key's own expiry
    run(
        Lang::Node,
        "control",
        cfg(&server, &q, json!({"op": "rateLimit", "ms": 60_000})),
    )
    .await;
    let (ours, theirs) = (
        queue.get_rate_limit_ttl(None).await.unwrap(),
        node(None).await,
    );
    assert!(
        ours > 50_000 && (ours - theirs).abs() < 5_000,
        "ours {ours}, node {theirs}"
    );
    // a global limit of 3 used up: limited; measured against 10: free
    run(
        Lang::Node,
        "control",
        cfg(
            &server,
            &q,
            json!({"op": "setGlobalRateLimit", "max": 3, "duration": 60_000}),
        ),
    )
    .await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("bull:{q}:limiter"))
        .arg(3)
        .arg("PX")
        .arg(60_000)
        .query_async(&mut con)
        .await
        .unwrap();
    let (ours, theirs) = (
        queue.get_rate_limit_ttl(None).await.unwrap(),
        node(None).await,
    );
    assert!(
        ours > 50_000 && (ours - theirs).abs() < 5_000,
        "ours {ours}, node {theirs}"
    );
    assert_eq!(
        (
            queue.get_rate_limit_ttl(Some(10)).await.unwrap(),
            node(Some(10)).await
        ),
        (0, 0)
    );
}
