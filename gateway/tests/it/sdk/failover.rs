//! Two gateway processes on one Redis; the one the client is on is killed
//! (SIGKILL) while its calls run: each call ends exactly once, via the other.

use super::{assert_all_ok, GatewayProcess, Script};
use crate::support::{demo_worker, token, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_calls_survive_a_killed_gateway() {
    let env = Env::new();
    let _worker = demo_worker(&env.connection().await).await;
    let mut first = GatewayProcess::start(&env).await;
    let second = GatewayProcess::start(&env).await;
    let mut cmd = super::js::node("test/failover.mjs");
    cmd.env("GW_URLS", format!("{},{}", first.url(), second.url()))
        .env("GW_TOKEN", token("sdk-failover-js", 600));
    let mut script = Script::spawn(cmd);
    script.line_starting("inflight").await;
    first.kill9().await;
    let lines = script.finish().await;
    assert_all_ok(&lines, &["failover"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_calls_survive_a_killed_gateway() {
    let env = Env::new();
    let _worker = demo_worker(&env.connection().await).await;
    let mut first = GatewayProcess::start(&env).await;
    let second = GatewayProcess::start(&env).await;
    let mut cmd = super::python::python("tests/failover.py");
    cmd.env("GW_URLS", format!("{},{}", first.url(), second.url()))
        .env("GW_TOKEN", token("sdk-failover-py", 600));
    let mut script = Script::spawn(cmd);
    script.line_starting("inflight").await;
    first.kill9().await;
    let lines = script.finish().await;
    assert_all_ok(&lines, &["failover"]);
}
