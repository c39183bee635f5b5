//! `clients/js` in headless Chromium: Debian's `chromium` (apt), driven by
//! the pinned `playwright-core` of `clients/js/test/browser` (no browser
//! download). The page and the built SDK are served over HTTPS with the dev
//! certificate the gateway serves WSS with; Chromium trusts that one key by
//! its SPKI pin (see `clients/js/test/browser/run.mjs`).

use std::path::PathBuf;

use tokio::process::Command;

use super::{assert_all_ok, clients_js, setup_part, Script};
use crate::support::{token, Stack};

/// Debian's chromium: `$CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_in_headless_chromium_over_https() {
    let Some(chromium) = chromium() else {
        // .ci/run installs chromium and sets SDK_BROWSER_REQUIRED: there, a
        // missing browser fails the test instead of skipping it
        assert!(
            std::env::var_os("SDK_BROWSER_REQUIRED").is_none(),
            "chromium is missing (apt-get install chromium)"
        );
        eprintln!(
            "SKIPPED js_sdk_in_headless_chromium_over_https: no chromium on the PATH \
             (apt-get install chromium, or set CHROMIUM)"
        );
        return;
    };
    let js = clients_js();
    setup_part("clients-js-browser");
    let tls = gateway::tls::self_signed().expect("a dev certificate");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &tls.cert_pem).unwrap();
    std::fs::write(&key, &tls.key_pem).unwrap();
    let stack = Stack::start_with(|c| c.tls = Some(tls.clone())).await;

    let mut cmd = Command::new(interop_tests::clients::node());
    cmd.arg(js.join("test/browser/run.mjs"))
        .current_dir(js.join("test/browser"))
        .env(
            "GW_URL",
            format!("wss://localhost:{}/ws", stack.gw.addr.port()),
        )
        .env("GW_TOKEN", token("sdk-browser", 600))
        .env("TLS_CERT", &cert)
        .env("TLS_KEY", &key)
        .env("CHROMIUM", &chromium);
    let lines = Script::spawn(cmd).finish().await;
    assert_all_ok(
        &lines,
        &[
            "untrusted",
            "https_page",
            "echo",
            "progress",
            "failed",
            "one_connection",
        ],
    );
    stack.gw.shutdown().await;
}
