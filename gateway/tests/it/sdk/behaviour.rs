//! Connection behaviour of both SDKs (`clients/js/test/behaviour.mjs`,
//! `clients/python/tests/behaviour.py`): the token refreshed with `rpc.auth`
//! before it expires, a silent dead socket noticed by the heartbeat, calls
//! waiting in a bounded queue while disconnected (-32090 beyond it), the
//! reconnect after a 4429 close through the gateway's abuse cooldown, and a
//! call cancelled (Python) or aborted (JS) before the gateway accepted it.

use std::time::Duration;

use gateway::config::Rate;
use tokio::process::Command;

use super::{assert_all_ok, Script};
use crate::support::{Stack, SECRET};

/// A gateway whose tokens have no leeway (so an unrefreshed token ends the socket at `exp`).
async fn main_stack() -> Stack {
    Stack::start_with(|c| c.auth.leeway_secs = 0).await
}

/// A gateway that closes with 4429 after three rate-limited requests in a row
/// (2 per second, burst 2) and then refuses the user for 2 s.
async fn abuse_stack() -> Stack {
    Stack::start_with(|c| {
        c.limits.user_rate = Rate {
            per_second: 2.0,
            burst: 2.0,
        };
        c.limits.rate_limit_close_after = 3;
        c.limits.abuse_cooldown = Duration::from_secs(2);
    })
    .await
}

fn with_env(mut cmd: Command, stack: &Stack, sub: &str, scenarios: &str) -> Command {
    cmd.env("GW_URL", format!("ws://{}/ws", stack.gw.addr))
        .env("GW_SECRET", String::from_utf8_lossy(SECRET).to_string())
        .env("GW_SUB", sub)
        .env("SCENARIOS", scenarios);
    cmd
}

async fn run(cmd: Command, names: &[&str]) {
    let lines = Script::spawn(cmd).finish().await;
    eprintln!("{lines:?}");
    // the script prints "ok <name> <ms>ms"
    let names_only: Vec<String> = lines
        .iter()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_all_ok(&names_only, names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_connection_behaviour() {
    let stack = main_stack().await;
    let cmd = with_env(
        super::js::node("test/behaviour.mjs"),
        &stack,
        "sdk-js-behaviour",
        "main",
    );
    run(
        cmd,
        &[
            "token_refresh",
            "heartbeat",
            "queue_bounded",
            "abort_before_accepted",
        ],
    )
    .await;
    stack.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_reconnects_after_4429_through_the_cooldown() {
    let stack = abuse_stack().await;
    let cmd = with_env(
        super::js::node("test/behaviour.mjs"),
        &stack,
        "sdk-js-abuse",
        "abuse",
    );
    run(cmd, &["reconnect_after_4429"]).await;
    stack.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_connection_behaviour() {
    let stack = main_stack().await;
    let cmd = with_env(
        super::python::python("tests/behaviour.py"),
        &stack,
        "sdk-py-behaviour",
        "main",
    );
    run(
        cmd,
        &[
            "token_refresh",
            "heartbeat",
            "queue_bounded",
            "cancel_before_accepted",
        ],
    )
    .await;
    stack.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_reconnects_after_4429_through_the_cooldown() {
    let stack = abuse_stack().await;
    let cmd = with_env(
        super::python::python("tests/behaviour.py"),
        &stack,
        "sdk-py-abuse",
        "abuse",
    );
    run(cmd, &["reconnect_after_4429"]).await;
    stack.gw.shutdown().await;
}
