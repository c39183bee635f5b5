//! `clients/js` (npm `bullmq-wire-client`) in Node 20 against the gateway.

use tokio::process::Command;

use super::{assert_all_ok, clients_js, Script};
use crate::support::{token, Stack};

/// `node <script>` in `clients/js` (so the package resolves itself by name).
pub fn node(script: &str) -> Command {
    let dir = clients_js();
    let mut cmd = Command::new(interop_tests::clients::node());
    cmd.arg(dir.join(script)).current_dir(&dir);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_passes_its_suite() {
    let stack = Stack::start().await;
    let mut cmd = node("test/suite.mjs");
    cmd.env("GW_URL", format!("ws://{}/ws", stack.gw.addr))
        .env("GW_TOKEN", token("sdk-js", 600));
    let lines = Script::spawn(cmd).finish().await;
    assert_all_ok(
        &lines,
        &[
            "echo",
            "progress",
            "retried",
            "failed_for_good",
            "cancel",
            "abort",
            "batch",
            "subscribe",
            "concurrent_500",
            "one_connection",
            "closed",
        ],
    );
    stack.gw.shutdown().await;
}
