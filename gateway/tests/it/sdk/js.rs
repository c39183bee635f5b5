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

/// The scenarios `test/suite.mjs` reports, whatever runs it.
const SUITE: &[&str] = &[
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
];

/// Runs `test/suite.mjs` through `cmd` against a fresh stack as `user`;
/// every scenario of [`SUITE`] and `extra` must report ok.
pub async fn passes_suite(mut cmd: Command, user: &str, extra: &[&str]) {
    let stack = Stack::start().await;
    cmd.env("GW_URL", format!("ws://{}/ws", stack.gw.addr))
        .env("GW_TOKEN", token(user, 600));
    let lines = Script::spawn(cmd).finish().await;
    let expected: Vec<&str> = extra.iter().chain(SUITE).copied().collect();
    assert_all_ok(&lines, &expected);
    stack.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_passes_its_suite() {
    passes_suite(node("test/suite.mjs"), "sdk-js", &[]).await;
}
