//! Scenario 6: the read side. Node's `Queue` getters and ours give the same
//! answers about one queue: `getWorkers` finds workers of the other language
//! by name (exactly once), and for a queue holding jobs in every state
//! `getJobCounts`, `getJobs` (lists and sorted sets, any range, both
//! orders), `getJobState` and `getJobLogs` agree.

use std::collections::BTreeMap;
use std::time::Duration;

use bullmq_wire::{Connection, JobState, Queue, Worker, WorkerOptions};
use interop_tests::{behave, cfg, queue_name, run, Lang, Process, RedisServer};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

/// Standard base64 with padding, as BullMQ encodes queue names in client names.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Node's `getWorkers()` raw client names, sorted.
async fn node_workers(server: &RedisServer, q: &str) -> Vec<String> {
    let out = run(Lang::Node, "inspect", cfg(server, q, json!({}))).await;
    out["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Our `get_workers()` raw client names, sorted.
async fn rust_workers(queue: &Queue) -> Vec<String> {
    let mut names: Vec<String> = queue
        .get_workers()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.raw_name)
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_are_listed_by_name_across_languages() {
    let server = RedisServer::start();
    let q = queue_name();
    let base = format!("bull:{}", base64(q.as_bytes()));
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();

    // a named Rust worker: Node lists it once, under its name
    let opts = WorkerOptions {
        name: Some("rust-w".into()),
        drain_delay: Duration::from_secs(1),
        ..Default::default()
    };
    let named = Worker::start(&q, &conn, opts, behave).await.unwrap();
    let rust_name = format!("{base}:w:rust-w");
    let listed = node_workers(&server, &q).await;
    assert_eq!(
        listed.iter().filter(|n| **n == rust_name).count(),
        1,
        "node getWorkers: {listed:?}"
    );
    assert_eq!(
        rust_workers(&queue).await,
        listed,
        "our get_workers differs from node's"
    );
    let info = queue
        .get_workers()
        .await
        .unwrap()
        .into_iter()
        .find(|w| w.raw_name == rust_name)
        .unwrap();
    assert_eq!(info.name.as_deref(), Some("rust-w"));

    // an unnamed Rust worker is listed under the bare queue client name
    let unnamed = Worker::start(&q, &conn, WorkerOptions::default(), behave)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + T;
    let listed = loop {
        let listed = node_workers(&server, &q).await;
        if listed.contains(&base) || tokio::time::Instant::now() > deadline {
            break listed;
        }
    };
    assert_eq!(
        listed.iter().filter(|n| **n == base).count(),
        1,
        "node getWorkers: {listed:?}"
    );

    // a named Node worker: we list it, and agree with Node on the whole list
    let node = Process::start(
        Lang::Node,
        "worker",
        cfg(&server, &q, json!({"name": "node-w", "drainDelay": 1})),
    )
    .await;
    let node_name = format!("{base}:w:node-w");
    let ours = rust_workers(&queue).await;
    assert!(
        ours.contains(&node_name),
        "our get_workers misses the node worker: {ours:?}"
    );
    let info = queue
        .get_workers()
        .await
        .unwrap()
        .into_iter()
        .find(|w| w.raw_name == node_name)
        .unwrap();
    assert_eq!(info.name.as_deref(), Some("node-w"));
    assert_eq!(
        ours,
        node_workers(&server, &q).await,
        "our get_workers differs from node's"
    );

    // a closed worker disappears from both lists
    named.close().await;
    unnamed.close().await;
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let listed = node_workers(&server, &q).await;
        if !listed.contains(&rust_name) && !listed.contains(&base) {
            assert!(listed.contains(&node_name));
            assert_eq!(rust_workers(&queue).await, listed);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "closed workers still listed: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.stop().await;
}

/// Adds jobs from Node; returns their ids.
async fn add(server: &RedisServer, q: &str, jobs: Value) -> Vec<String> {
    let out = run(Lang::Node, "add", cfg(server, q, json!({"jobs": jobs}))).await;
    out["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A queue with jobs in every state: completed and failed (run by our worker),
/// active (two `hang` jobs held by a Rust worker process, returned so it stays
/// alive), waiting, prioritized and delayed. Returns every id.
async fn every_state(server: &RedisServer, q: &str, queue: &Queue) -> (Vec<String>, Process) {
    let mut ids = add(
        server,
        q,
        json!([
            {"name": "echo", "data": {"n": 1}},
            {"name": "fail", "data": {"times": 9}},
            {"name": "log", "data": {}},
            {"name": "echo", "data": {"n": 2}},
            {"name": "fail", "data": {"times": 9}},
            {"name": "echo", "data": {"n": 3}},
        ]),
    )
    .await;
    let opts = WorkerOptions {
        drain_delay: Duration::from_millis(500),
        ..Default::default()
    };
    let worker = Worker::start(q, queue.connection(), opts, behave)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let c = queue
            .get_job_counts(&[JobState::Completed, JobState::Failed])
            .await
            .unwrap();
        if c[&JobState::Completed] == 4 && c[&JobState::Failed] == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "first jobs not finished: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.close().await;

    ids.extend(add(server, q, json!([{"name": "hang"}, {"name": "hang"}])).await);
    let mut holder = Process::start(
        Lang::Rust,
        "worker",
        cfg(server, q, json!({"concurrency": 2})),
    )
    .await;
    holder.wait_count(T, 2, |v| v["event"] == "start").await;

    // the holder is full, so these stay where they are
    ids.extend(
        add(
            server,
            q,
            json!([
                {"name": "echo", "data": {"w": 1}},
                {"name": "echo", "data": {"p": 3}, "opts": {"priority": 3}},
                {"name": "echo", "data": {"d": 2}, "opts": {"delay": 700000}},
                {"name": "echo", "data": {"w": 2}, "opts": {"lifo": true}},
                {"name": "echo", "data": {"p": 1}, "opts": {"priority": 1}},
                {"name": "echo", "data": {"d": 1}, "opts": {"delay": 500000}},
                {"name": "echo", "data": {"w": 3}},
                {"name": "echo", "data": {"p": 3}, "opts": {"priority": 3}},
                {"name": "echo", "data": {"d": 3}, "opts": {"delay": 600000}},
            ]),
        )
        .await,
    );
    (ids, holder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_jobs_and_states_agree_for_every_state() {
    let server = RedisServer::start();
    let q = queue_name();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    let (ids, holder) = every_state(&server, &q, &queue).await;

    // the getJobs calls to compare: each state alone and mixed, several
    // ranges (inside, partly and wholly past the end), both orders
    let state_sets: Vec<Vec<&str>> = vec![
        vec!["waiting"],
        vec!["active"],
        vec!["prioritized"],
        vec!["delayed"],
        vec!["completed"],
        vec!["failed"],
        vec!["waiting-children"],
        vec!["waiting", "prioritized"],
        vec!["failed", "completed", "delayed"],
        vec!["active", "waiting", "active"],
        vec![],
    ];
    let ranges = [(0, -1), (0, 0), (1, 2), (1, -1), (2, 5), (5, 9), (-2, -1)];
    let mut cases = Vec::new();
    for states in &state_sets {
        for (start, end) in ranges {
            for asc in [false, true] {
                cases.push(json!({"states": states, "start": start, "end": end, "asc": asc}));
            }
        }
    }
    let node = run(
        Lang::Node,
        "inspect",
        cfg(&server, &q, json!({"ids": ids, "lists": cases})),
    )
    .await;

    // counts
    let ours = queue.get_job_counts(&[]).await.unwrap();
    let ours: BTreeMap<String, u64> = ours
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), n))
        .collect();
    let theirs: BTreeMap<String, u64> = node["counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(ours, theirs, "getJobCounts");
    let expected = [
        ("active", 2),
        ("completed", 4),
        ("delayed", 3),
        ("failed", 2),
        ("prioritized", 3),
        ("waiting", 3),
        ("waiting-children", 0),
    ];
    assert_eq!(
        ours,
        expected
            .iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect::<BTreeMap<_, _>>()
    );
    let some: Vec<JobState> = vec![JobState::Delayed, JobState::Waiting];
    let c = queue.get_job_counts(&some).await.unwrap();
    assert_eq!(
        (c.len(), c[&JobState::Delayed], c[&JobState::Waiting]),
        (2, 3, 3)
    );

    // states
    for id in &ids {
        let theirs = node["jobs"][id]["state"].as_str().unwrap();
        assert_eq!(
            queue.get_job_state(id).await.unwrap().as_str(),
            theirs,
            "state of job {id}"
        );
    }
    assert_eq!(
        queue.get_job_state("no-such-job").await.unwrap(),
        JobState::Unknown
    );

    // getJobs
    let mut wrong = Vec::new();
    for (case, theirs) in cases.iter().zip(node["lists"].as_array().unwrap()) {
        let states: Vec<JobState> = case["states"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().parse().unwrap())
            .collect();
        let (start, end, asc) = (
            case["start"].as_i64().unwrap(),
            case["end"].as_i64().unwrap(),
            case["asc"] == true,
        );
        let jobs = queue.get_jobs(&states, start, end, asc).await.unwrap();
        let ours: Vec<Value> = jobs.iter().map(|j| json!(j.id)).collect();
        if json!(ours) != *theirs {
            wrong.push(format!("  {case}: ours {ours:?} vs node {theirs}"));
        }
    }
    assert!(wrong.is_empty(), "getJobs differs:\n{}", wrong.join("\n"));

    // and both are right: the wait list is newest first with the lifo job
    // at the tail, priorities and due times order the sorted sets
    let listed = |states: &[JobState], asc: bool| {
        let queue = queue.clone();
        let states = states.to_vec();
        async move {
            queue
                .get_jobs(&states, 0, -1, asc)
                .await
                .unwrap()
                .into_iter()
                .map(|j| j.id)
                .collect::<Vec<_>>()
        }
    };
    let at = |i: &[usize]| i.iter().map(|i| ids[*i].clone()).collect::<Vec<_>>();
    assert_eq!(listed(&[JobState::Waiting], false).await, at(&[14, 8, 11]));
    assert_eq!(
        listed(&[JobState::Prioritized], true).await,
        at(&[12, 9, 15])
    );
    assert_eq!(listed(&[JobState::Delayed], true).await, at(&[13, 16, 10]));
    assert_eq!(listed(&[JobState::Active], false).await.len(), 2);
    holder.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_logs_agree() {
    let server = RedisServer::start();
    let q = queue_name();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    // one job logged by our worker and then by Node, one by Node with keepLogs
    let ids = add(
        &server,
        &q,
        json!([{"name": "log"}, {"name": "echo", "opts": {"delay": 600000}}]),
    )
    .await;
    let worker = Worker::start(&q, &conn, WorkerOptions::default(), behave)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + T;
    while queue.get_job_state(&ids[0]).await.unwrap() != JobState::Completed {
        assert!(
            tokio::time::Instant::now() < deadline,
            "log job not completed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.close().await;
    for row in ["line 3", "line 4", "line 5"] {
        run(
            Lang::Node,
            "control",
            cfg(
                &server,
                &q,
                json!({"op": "addLog", "id": ids[0], "row": row}),
            ),
        )
        .await;
    }
    for row in ["a", "b", "c", "d"] {
        let args = json!({"op": "addLog", "id": ids[1], "row": row, "keepLogs": 2});
        run(Lang::Node, "control", cfg(&server, &q, args)).await;
    }
    queue.add_log(&ids[1], "e", Some(2)).await.unwrap();

    let (lines, count) = queue.get_job_logs(&ids[0], 0, -1, true).await.unwrap();
    assert_eq!(
        (lines, count),
        (
            ["line 1", "line 2", "line 3", "line 4", "line 5"]
                .map(String::from)
                .to_vec(),
            5
        )
    );
    let (lines, count) = queue.get_job_logs(&ids[1], 0, -1, true).await.unwrap();
    assert_eq!((lines, count), (["d", "e"].map(String::from).to_vec(), 2));

    for (start, end) in [(0, -1), (0, 0), (1, 3), (2, -1), (3, 10), (7, 9)] {
        for asc in [true, false] {
            let args = json!({"ids": ids, "logStart": start, "logEnd": end, "logAsc": asc});
            let node = run(Lang::Node, "inspect", cfg(&server, &q, args)).await;
            for id in &ids {
                let (lines, count) = queue.get_job_logs(id, start, end, asc).await.unwrap();
                assert_eq!(
                    json!({"logs": lines, "count": count}),
                    node["jobs"][id]["logs"],
                    "logs of job {id}, start {start} end {end} asc {asc}"
                );
            }
        }
    }
}

/// A queue written by BullMQ <= 4 can hold a wait-list marker (`0:<delay>`)
/// at the tail of `wait`. It is not a job: BullMQ 6 neither counts nor
/// lists it (and drops it when listing), so we must not either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bullmq4_wait_marker_is_not_a_job() {
    let server = RedisServer::start();
    let q = queue_name();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&q, &conn).await.unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let wait = format!("bull:{q}:wait");
    let _: () = redis::cmd("LPUSH")
        .arg(&wait)
        .arg("0:0")
        .query_async(&mut con)
        .await
        .unwrap();
    let ids = add(
        &server,
        &q,
        json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]),
    )
    .await;

    let counts = queue.get_job_counts(&[JobState::Waiting]).await.unwrap();
    assert_eq!(
        counts[&JobState::Waiting],
        3,
        "the marker was counted as a job"
    );
    let oldest: Vec<String> = queue
        .get_jobs(&[JobState::Waiting], 0, 0, true)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(
        oldest,
        vec![ids[0].clone()],
        "asc range 0..=0 must be the oldest job, not the marker"
    );

    // Node, given the same list (its reads drop the marker too)
    let _: () = redis::cmd("RPUSH")
        .arg(&wait)
        .arg("0:0")
        .query_async(&mut con)
        .await
        .unwrap();
    let case = json!({"states": ["waiting"], "start": 0, "end": 0, "asc": true});
    let node = run(
        Lang::Node,
        "inspect",
        cfg(&server, &q, json!({"lists": [case]})),
    )
    .await;
    assert_eq!(node["counts"]["waiting"], 3);
    assert_eq!(node["lists"][0], json!([ids[0]]));
}
