//! The PRD's examples 6.1 and 6.2 rewritten with the SDKs
//! (`clients/*/examples/`), run against a gateway with the built-in
//! `data` and `analysis` services.

use super::{js::node, python::python, Script};
use crate::prd_examples::stack;
use crate::support::{token, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_examples_print_their_results() {
    let env = Env::new();
    let (gw, runtime) = stack(&env).await;
    let url = format!("ws://{}/ws", gw.addr);

    let mut cmd = node("examples/prd-6.1.mjs");
    cmd.env("GW_URL", &url)
        .env("GW_TOKEN", token("sdk-ex-js", 600));
    let out = Script::spawn(cmd).finish().await;
    assert_eq!(
        out.first().map(String::as_str),
        Some("Connected"),
        "{out:?}"
    );
    let result = out.last().cloned().unwrap_or_default();
    assert!(
        result.starts_with("Result:") && result.contains("large-dataset"),
        "{out:?}"
    );

    let mut cmd = python("examples/prd_6_2.py");
    cmd.env("GW_URL", &url)
        .env("GW_TOKEN", token("sdk-ex-py", 600));
    let out = Script::spawn(cmd).finish().await;
    assert_eq!(
        out.first().map(String::as_str),
        Some("Connected"),
        "{out:?}"
    );
    let result = out.last().cloned().unwrap_or_default();
    assert!(
        result.starts_with("Result:") && result.contains("\"model\": \"demo-v1\""),
        "{out:?}"
    );

    runtime.close().await;
    gw.shutdown().await;
}
