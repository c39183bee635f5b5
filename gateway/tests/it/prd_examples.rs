//! The PRD's client examples (section 6.1, JavaScript; 6.2, Python with
//! `websocket-client`), copied verbatim into `tests/prd_examples/`, run
//! against a gateway with only the URL and the token changed; each must
//! print the result of its call.

use std::path::Path;
use std::process::Stdio;

use interop_tests::clients;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use worker_runtime::{services, Registry, Runtime, RuntimeOptions};

use crate::support::{token, Env, Gw, WAIT};

/// The example's source with its placeholder URL replaced.
fn example(file: &str, placeholder: &str, url: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/prd_examples")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(placeholder),
        "{file} no longer has the PRD's URL"
    );
    text.replace(placeholder, url)
}

/// Runs a client until it prints a line starting with "Result:"; returns
/// everything it printed.
async fn run_until_result(mut cmd: Command) -> Vec<String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let done = line.starts_with("Result:");
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    let _ = child.start_kill();
    assert_eq!(found, Ok(true), "no result printed; output: {seen:?}");
    seen
}

/// A gateway serving `data` and `analysis`, with the built-in services.
pub(crate) async fn stack(env: &Env) -> (Gw, Runtime) {
    let mut config = env.config();
    config.services.add_list("data,analysis").unwrap();
    let gw = Gw::start(config).await;
    let mut registry = Registry::new();
    registry.merge(services::data::registry().unwrap()).unwrap();
    registry
        .merge(services::analysis::registry().unwrap())
        .unwrap();
    let runtime = Runtime::start(&env.connection().await, registry, RuntimeOptions::default())
        .await
        .unwrap();
    (gw, runtime)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_example_prints_the_result() {
    let env = Env::new();
    let (gw, runtime) = stack(&env).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("client.js");
    let url = gw.url(&token("prd-js", 600));
    std::fs::write(
        &script,
        example(
            "client.js",
            "wss://api.example.com/ws?token=jwt-token-here",
            &url,
        ),
    )
    .unwrap();
    let mut cmd = Command::new(clients::node());
    // Node 20 has the browser WebSocket behind this flag (on by default from Node 22)
    cmd.arg("--experimental-websocket").arg(&script);
    let out = run_until_result(cmd).await;
    assert_eq!(out[0], "Connected");
    let result = out.last().unwrap();
    assert!(
        result.contains("processed: 'large-dataset'") && result.contains("bytes: 15"),
        "{result}"
    );
    runtime.close().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_example_prints_the_result() {
    let env = Env::new();
    let (gw, runtime) = stack(&env).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("client.py");
    let url = gw.url(&token("prd-py", 600));
    std::fs::write(
        &script,
        example(
            "client.py",
            "wss://api.example.com/ws?token=jwt-token",
            &url,
        ),
    )
    .unwrap();
    let cmd = clients::python_command(&script);
    let out = run_until_result(cmd).await;
    assert_eq!(out[0], "Connected");
    let result = out.last().unwrap();
    assert!(
        result.contains("'model': 'demo-v1'") && result.contains("'input': 'input'"),
        "{result}"
    );
    runtime.close().await;
    gw.shutdown().await;
}
