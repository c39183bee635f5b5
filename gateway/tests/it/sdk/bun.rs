//! `clients/js` in Bun (npm `bun`, pinned in `clients/js/test/bun`): the same
//! suite and failover scripts as in Node, on Bun's own WebSocket.

use std::path::PathBuf;

use tokio::process::Command;

use super::{assert_all_ok, clients_js, setup_part, GatewayProcess, Script};
use crate::support::{demo_worker, token, Env};

/// `bun <script>` in `clients/js` (so the package resolves itself by name).
pub fn bun(script: &str) -> Command {
    let dir = clients_js();
    setup_part("clients-js-bun");
    let bin: PathBuf = dir.join("test/bun/node_modules/.bin/bun");
    assert!(
        bin.is_file(),
        "npm package bun gave no binary at {}",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.arg(dir.join(script)).current_dir(&dir);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_passes_its_suite_in_bun() {
    super::js::passes_suite(bun("test/suite.mjs"), "sdk-bun", &["runtime_bun"]).await;
}

/// Reconnect in Bun: the gateway the client is on is killed with calls in
/// flight; each call ends exactly once via the other gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_calls_survive_a_killed_gateway_in_bun() {
    let env = Env::new();
    let _worker = demo_worker(&env.connection().await).await;
    let mut first = GatewayProcess::start(&env).await;
    let second = GatewayProcess::start(&env).await;
    let mut cmd = bun("test/failover.mjs");
    cmd.env("GW_URLS", format!("{},{}", first.url(), second.url()))
        .env("GW_TOKEN", token("sdk-failover-bun", 600));
    let mut script = Script::spawn(cmd);
    script.line_starting("inflight").await;
    first.kill9().await;
    let lines = script.finish().await;
    assert_all_ok(&lines, &["failover"]);
}
