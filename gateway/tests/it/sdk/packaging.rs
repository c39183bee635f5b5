//! The SDKs as a new user gets them: `npm pack` and `python -m build` of
//! `clients/python`, installed into clean folders, then the PRD examples run
//! from there against a gateway.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::{clients_js, clients_python_src, repo_root, Script};
use crate::prd_examples::stack;
use crate::support::{token, Env};

async fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().await.expect(what);
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packed_sdks_install_and_run_their_examples() {
    let env = Env::new();
    let (gw, runtime) = stack(&env).await;
    let url = format!("ws://{}/ws", gw.addr);
    let tmp = tempfile::tempdir().expect("a temp dir");

    // npm: pack, install the tarball into an empty project, run the example there
    let js = clients_js();
    let app = tmp.path().join("js-app");
    std::fs::create_dir_all(&app).expect("js-app");
    run_ok(
        Command::new("npm")
            .args(["pack", "--silent", "--pack-destination"])
            .arg(&app)
            .current_dir(&js),
        "npm pack",
    )
    .await;
    std::fs::write(
        app.join("package.json"),
        r#"{"private": true, "type": "module"}"#,
    )
    .expect("package.json");
    run_ok(
        Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "./bullmq-wire-client-0.1.0.tgz",
            ])
            .current_dir(&app),
        "npm install of the tarball",
    )
    .await;
    std::fs::copy(js.join("examples/prd-6.1.mjs"), app.join("example.mjs")).expect("copy");
    let mut cmd = Command::new(interop_tests::clients::node());
    cmd.arg("example.mjs")
        .current_dir(&app)
        .env("GW_URL", &url)
        .env("GW_TOKEN", token("sdk-pack-js", 600));
    let out = Script::spawn(cmd).finish().await;
    assert!(
        out.last().is_some_and(|l| l.starts_with("Result:")),
        "{out:?}"
    );

    // python -m build: an sdist and a wheel from a copy of clients/python (the
    // build writes egg-info beside the sources), then the wheel installed with
    // pip into a clean target folder and the example run from there
    let src = clients_python_src()
        .parent()
        .expect("clients/python")
        .to_path_buf();
    let copy = tmp.path().join("py-src");
    copy_tree(&src, &copy);
    let dist = tmp.path().join("py-dist");
    run_ok(
        Command::new(interop_tests::clients::python())
            .args(["-m", "build", "--no-isolation", "--outdir"])
            .arg(&dist)
            .arg(&copy),
        "python -m build of clients/python",
    )
    .await;
    let built: Vec<PathBuf> = std::fs::read_dir(&dist)
        .expect("dist")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let wheel = built
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .unwrap_or_else(|| panic!("a wheel among {built:?}"));
    assert!(
        built
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".tar.gz")),
        "an sdist among {built:?}"
    );
    let site = tmp.path().join("py-site");
    run_ok(
        Command::new(interop_tests::clients::python())
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--target",
            ])
            .arg(&site)
            .arg(wheel),
        "pip install of the built wheel",
    )
    .await;
    let example = tmp.path().join("example.py");
    std::fs::copy(
        repo_root().join("clients/python/examples/prd_6_2.py"),
        &example,
    )
    .expect("copy");
    let mut cmd = Command::new(interop_tests::clients::python());
    cmd.arg(&example)
        .current_dir(tmp.path())
        .env("PYTHONPATH", &site)
        .env("GW_URL", &url)
        .env("GW_TOKEN", token("sdk-pack-py", 600));
    let out = Script::spawn(cmd).finish().await;
    assert!(
        out.last().is_some_and(|l| l.starts_with("Result:")),
        "{out:?}"
    );
    assert!(site.join("bullmq_wire_client/py.typed").exists());

    runtime.close().await;
    gw.shutdown().await;
}

/// Copies `from` into `to` (files and folders; no links), skipping build
/// leftovers.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if name_str.ends_with(".egg-info") || name_str == "build" || name_str == "__pycache__" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy file");
        }
    }
}
