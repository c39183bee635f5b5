//! Unmodified Node (`bullmq` npm) and Python (`bullmq` PyPI) workers
//! serve services behind the gateway: they only write BullMQ's job hash
//! and events, and results, progress and failures still reach the socket.
//! Installs the pinned clients on first use (`interop-tests/setup.sh`, a
//! no-op once done).

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{Env, Gw, WAIT};

pub(crate) fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Installs the pinned npm and PyPI clients once per test process.
pub(crate) fn setup() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let status = std::process::Command::new("bash")
            .arg(workspace().join("interop-tests/setup.sh"))
            .stdout(Stdio::null())
            .status()
            .expect("run interop-tests/setup.sh");
        assert!(status.success(), "interop-tests/setup.sh failed");
    });
}

/// Starts a worker script and waits for its "ready" line.
async fn spawn_worker(program: PathBuf, script: &str, redis_url: &str, queue: &str) -> Child {
    setup();
    assert!(
        program.exists() || program.components().count() == 1,
        "{} is missing: run `bash interop-tests/setup.sh` first",
        program.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/workers")
        .join(script);
    let mut child = Command::new(&program)
        .arg(&script)
        .arg(redis_url)
        .arg(queue)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run `bash interop-tests/setup.sh`",
                program.display()
            )
        });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("worker ready in time")
        .unwrap();
    assert_eq!(ready.as_deref(), Some("ready"), "{script:?} did not start");
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
    let _worker = spawn_worker(
        PathBuf::from("node"),
        "node_worker.cjs",
        &env.redis.url(),
        "nodesvc",
    )
    .await;
    check_service(&gw, "nodesvc", "node").await;
}

/// A Python BullMQ worker behind the gateway.
#[tokio::test]
async fn python_worker_behind_the_gateway() {
    let env = Env::new();
    let mut config = env.config();
    config.services.add_list("pysvc").unwrap();
    let gw = Gw::start(config).await;
    let python = workspace().join("interop-tests/python/.venv/bin/python");
    let _worker = spawn_worker(python, "python_worker.py", &env.redis.url(), "pysvc").await;
    check_service(&gw, "pysvc", "python").await;
}
