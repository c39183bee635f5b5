//! Unmodified Node (`bullmq` npm) and Python (`bullmq` PyPI) workers
//! serve services behind the gateway: they only write BullMQ's job hash
//! and events, and results, progress and failures still reach the socket.
//! The clients come from `interop_tests::clients`, which installs them on
//! first use.

use std::path::PathBuf;
use std::process::Stdio;

use interop_tests::clients;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{Env, Gw, WAIT};

/// A worker script of `tests/workers/`.
fn worker_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/workers")
        .join(name)
}

/// Starts a worker script (`<redis-url> <queue>`) and waits for its "ready" line.
async fn spawn_worker(mut cmd: Command, redis_url: &str, queue: &str) -> Child {
    let mut child = cmd
        .arg(redis_url)
        .arg(queue)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("worker ready in time")
        .unwrap();
    assert_eq!(ready.as_deref(), Some("ready"), "{cmd:?} did not start");
    child
}

async fn check_service(gw: &Gw, service: &str, who: &str) {
    let mut c = gw.client("alice").await;
    let r = c
        .call(1, &format!("{service}.echo"), json!({"from": "gateway"}))
        .await;
    assert_eq!(r["result"], json!({"from": "gateway"}), "{service}: {r}");
    c.send(
        json!({"jsonrpc": "2.0", "id": 2, "method": format!("{service}.progress"), "params": {}}),
    )
    .await;
    let (r, before) = c.response(json!(2)).await;
    assert_eq!(r["result"], json!({"done": who}), "{service}: {r}");
    // The progress write and the end may be read together; when seen, it is 50.
    assert!(
        before.iter().all(|n| n["params"]["progress"] == 50),
        "{before:?}"
    );
    let r = c
        .call(
            3,
            &format!("{service}.fail"),
            json!({"message": format!("{who} says no")}),
        )
        .await;
    assert_eq!(r["error"]["code"], -32010, "{service}: {r}");
    assert_eq!(r["error"]["data"]["failedReason"], format!("{who} says no"));
    assert_eq!(r["error"]["data"]["attemptsMade"], 1);
}

/// A Node BullMQ worker behind the gateway.
#[tokio::test]
async fn node_worker_behind_the_gateway() {
    let env = Env::new();
    let mut config = env.config();
    config.services.add_list("nodesvc").unwrap();
    let gw = Gw::start(config).await;
    let node = clients::node_command(worker_script("node_worker.cjs"));
    let _worker = spawn_worker(node, &env.redis.url(), "nodesvc").await;
    check_service(&gw, "nodesvc", "node").await;
}

/// A Python BullMQ worker behind the gateway.
#[tokio::test]
async fn python_worker_behind_the_gateway() {
    let env = Env::new();
    let mut config = env.config();
    config.services.add_list("pysvc").unwrap();
    let gw = Gw::start(config).await;
    let python = clients::python_command(worker_script("python_worker.py"));
    let _worker = spawn_worker(python, &env.redis.url(), "pysvc").await;
    check_service(&gw, "pysvc", "python").await;
}
