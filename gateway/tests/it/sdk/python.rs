//! `clients/python` (PyPI `bullmq-wire-client`) against the gateway.

use tokio::process::Command;

use super::{assert_all_ok, clients_python_src, Script};
use crate::support::{token, Stack};

/// The venv's `python <script>` with `clients/python/src` on `PYTHONPATH`.
pub fn python(script: &str) -> Command {
    let src = clients_python_src();
    let mut cmd = Command::new(interop_tests::clients::python());
    cmd.arg(super::repo_root().join("clients/python").join(script))
        .env("PYTHONPATH", src)
        .env("PYTHONUNBUFFERED", "1");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_passes_its_suite() {
    let stack = Stack::start().await;
    let mut cmd = python("tests/suite.py");
    cmd.env("GW_URL", format!("ws://{}/ws", stack.gw.addr))
        .env("GW_TOKEN", token("sdk-py", 600));
    let lines = Script::spawn(cmd).finish().await;
    assert_all_ok(
        &lines,
        &[
            "echo",
            "progress",
            "retried",
            "failed_for_good",
            "cancel",
            "batch",
            "subscribe",
            "concurrent_500",
            "one_connection",
            "closed",
            "sync",
        ],
    );
    stack.gw.shutdown().await;
}
