//! The one home of the real clients' setup, for every crate's tests and for the
//! benchmarks: installing the pinned npm and PyPI packages (`setup.sh`), and
//! where `node`, the venv's `python` and the `node_modules` are. The gateway's
//! tests use it as a dev-dependency; nothing else builds these paths.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

/// `interop-tests/`, where `setup.sh`, `node/` and `python/` are.
pub fn interop_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Installs the pinned npm `bullmq` 6.7.0 and PyPI `bullmq` 3.4.4 once per
/// process (`setup.sh node python`, a no-op while its stamps match), after
/// checking that `node` runs.
///
/// # Panics
/// When `node` or the install fails: the tests that call this cannot run
/// without them, and the message says what to install.
pub fn setup() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let node_runs = std::process::Command::new(node())
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(node_runs, "`node` (Node 20) must be on the PATH");
        run_setup(&["node", "python"]);
    });
}

/// Installs `prd-stack/` (the PRD's own stack, a peer of the gateway benchmark;
/// Bun and Fastify) once per process: `setup.sh prd-stack`. Not part of
/// [`setup`], because only that benchmark runs it.
///
/// # Panics
/// When `npm ci` fails.
pub fn setup_prd_stack() -> PathBuf {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| run_setup(&["prd-stack"]));
    interop_dir().join("prd-stack")
}

fn run_setup(parts: &[&str]) {
    let script = interop_dir().join("setup.sh");
    let status = std::process::Command::new("bash")
        .arg(&script)
        .args(parts)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        status.success(),
        "{} {} failed: npm and PyPI must be reachable once",
        script.display(),
        parts.join(" ")
    );
}

/// The `node` program (from the PATH).
pub fn node() -> PathBuf {
    PathBuf::from("node")
}

/// The `node_modules` folder holding npm `bullmq` 6.7.0 and `ioredis`, filled by [`setup`].
pub fn node_modules() -> PathBuf {
    interop_dir().join("node/node_modules")
}

/// The Python of the venv holding PyPI `bullmq` 3.4.4, created by [`setup`].
pub fn python() -> PathBuf {
    interop_dir().join("python/.venv/bin/python")
}

/// `node <script>` after [`setup`], with `NODE_PATH` set to [`node_modules`] so
/// that a CommonJS script anywhere can `require('bullmq')`. Killed on drop.
pub fn node_command(script: impl AsRef<Path>) -> tokio::process::Command {
    setup();
    let mut c = tokio::process::Command::new(node());
    c.arg(script.as_ref())
        .env("NODE_PATH", node_modules())
        .kill_on_drop(true);
    c
}

/// The venv's `python <script>` after [`setup`]. Killed on drop.
pub fn python_command(script: impl AsRef<Path>) -> tokio::process::Command {
    setup();
    let mut c = tokio::process::Command::new(python());
    c.arg(script.as_ref()).kill_on_drop(true);
    c
}
