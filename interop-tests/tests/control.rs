//! Scenario 5: control from the other side. Pause/resume, drain, clean,
//! obliterate, retryJobs and promoteJobs issued by Node act on a Rust
//! worker's queue, and the same calls made by us act on a Node worker's.

use std::time::Duration;

use bullmq_wire::{Connection, JobState, Queue, Worker, WorkerOptions};
use interop_tests::{behave, cfg, job_options, queue_name, run, Lang, Process, RedisServer};
use serde_json::{json, Value};

/// Who issues the commands.
enum Controller {
    Node,
    Rust(Queue),
}

struct Bench {
    server: RedisServer,
    q: String,
    queue: Queue,
    ctl: Controller,
}

impl Bench {
    async fn add(&self, name: &str, data: Value, opts: Value) -> String {
        match &self.ctl {
            Controller::Node => {
                let out = run(
                    Lang::Node,
                    "add",
                    cfg(
                        &self.server,
                        &self.q,
                        json!({"jobs": [{"name": name, "data": data, "opts": opts}]}),
                    ),
                )
                .await;
                out["ids"][0].as_str().unwrap().to_string()
            }
            Controller::Rust(q) => q.add(name, &data, job_options(&opts)).await.unwrap(),
        }
    }

    async fn control(&self, op: &str, args: Value) {
        match &self.ctl {
            Controller::Node => {
                let mut c = cfg(&self.server, &self.q, args);
                c["op"] = json!(op);
                run(Lang::Node, "control", c).await;
            }
            Controller::Rust(q) => match op {
                "pause" => q.pause().await.unwrap(),
                "resume" => q.resume().await.unwrap(),
                "drain" => drop(
                    q.drain(args["delayed"].as_bool().unwrap_or(false))
                        .await
                        .unwrap(),
                ),
                "clean" => drop(
                    q.clean(0, 0, args["type"].as_str().unwrap().parse().unwrap())
                        .await
                        .unwrap(),
                ),
                "obliterate" => q.obliterate(false).await.unwrap(),
                "retryJobs" => q.retry_jobs(JobState::Failed, 100, None).await.unwrap(),
                "promoteJobs" => q.promote_jobs(100).await.unwrap(),
                other => panic!("no such op {other}"),
            },
        }
    }

    async fn state(&self, id: &str) -> JobState {
        self.queue.get_job_state(id).await.unwrap()
    }

    async fn wait_state(&self, id: &str, want: JobState) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.state(id).await != want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {id} never became {want}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn exercise(bench: &Bench) {
    // pause: a new job waits; resume: it runs
    bench.control("pause", json!({})).await;
    let id = bench.add("echo", json!({"n": 1}), json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // a paused queue must stay untouched meanwhile
    assert_eq!(
        bench.state(&id).await,
        JobState::Waiting,
        "ran while paused"
    );
    bench.control("resume", json!({})).await;
    bench.wait_state(&id, JobState::Completed).await;

    // retryJobs: a failed job runs again (and succeeds the second time)
    let failing = bench
        .add("fail", json!({"times": 1}), json!({"attempts": 1}))
        .await;
    bench.wait_state(&failing, JobState::Failed).await;
    bench.control("retryJobs", json!({"state": "failed"})).await;
    bench.wait_state(&failing, JobState::Completed).await;

    // promoteJobs: a delayed job runs now
    let delayed = bench.add("echo", json!({}), json!({"delay": 600000})).await;
    assert_eq!(bench.state(&delayed).await, JobState::Delayed);
    bench.control("promoteJobs", json!({})).await;
    bench.wait_state(&delayed, JobState::Completed).await;

    // clean: completed jobs are removed
    bench
        .control(
            "clean",
            json!({"type": "completed", "grace": 0, "limit": 0}),
        )
        .await;
    assert!(
        bench.queue.get_job(&id).await.unwrap().is_none(),
        "clean left a completed job"
    );

    // drain: waiting jobs of a paused queue are removed
    bench.control("pause", json!({})).await;
    let a = bench.add("echo", json!({}), json!({})).await;
    let b = bench.add("echo", json!({}), json!({"priority": 3})).await;
    bench.control("drain", json!({"delayed": true})).await;
    assert_eq!(bench.state(&a).await, JobState::Unknown);
    assert_eq!(bench.state(&b).await, JobState::Unknown);

    // obliterate: nothing of the queue is left
    bench.control("obliterate", json!({})).await;
    let client = redis::Client::open(bench.server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("bull:{}:*", bench.q))
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(keys.is_empty(), "obliterate left {keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_controls_a_rust_worker() {
    let server = RedisServer::start();
    let q = queue_name();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    let opts = WorkerOptions {
        drain_delay: Duration::from_millis(500),
        ..Default::default()
    };
    let worker = Worker::start(&q, &conn, opts, behave).await.unwrap();
    let bench = Bench {
        server,
        q,
        queue,
        ctl: Controller::Node,
    };
    exercise(&bench).await;
    worker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_controls_a_node_worker() {
    let server = RedisServer::start();
    let q = queue_name();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    let node = Process::start(
        Lang::Node,
        "worker",
        cfg(&server, &q, json!({"drainDelay": 1})),
    )
    .await;
    let bench = Bench {
        server,
        q,
        queue: queue.clone(),
        ctl: Controller::Rust(queue),
    };
    exercise(&bench).await;
    node.stop().await;
}
