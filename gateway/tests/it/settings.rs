//! The settings table: every setting is in the README, and every boolean
//! environment variable accepts what people type.

use std::process::Command;

use gateway::config::SETTINGS;

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    std::fs::read_to_string(path).expect("README.md at the workspace root")
}

/// A setting added to `config/settings.rs` without its README row fails
/// here, and so does a row whose flag, variable, key or default drifted.
#[test]
fn readme_lists_every_setting() {
    let readme = readme();
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `")).collect();
    let mut missing = Vec::new();
    for s in SETTINGS {
        let default = (s.default)();
        let default = if default == "unset" {
            "| unset |".to_string()
        } else {
            format!("| `{default}` |")
        };
        let cells = [
            format!("| `{}` |", s.name),
            format!("| `--{}` |", s.flag),
            format!("| `{}` |", s.env),
            format!("| `{}` |", s.file_key()),
            default,
        ];
        if !rows
            .iter()
            .any(|row| cells.iter().all(|c| row.contains(c.as_str())))
        {
            missing.push(cells.join(" "));
        }
    }
    assert!(
        missing.is_empty(),
        "README.md's settings table lacks (or has drifted from) these rows:\n{}",
        missing.join("\n")
    );
}

/// Runs the gateway binary with one environment variable and a config
/// file that does not exist: settings that parse get as far as reading
/// the file (exit 1), bad values are refused by the parser (exit 2).
fn run_with_env(var: &str, value: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .env(var, value)
        .args(["--config", "/nonexistent/gateway-settings-test.toml"])
        .output()
        .expect("the gateway binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn boolean_environment_variables_accept_what_people_type() {
    let booleans: Vec<_> = SETTINGS
        .iter()
        .filter(|s| matches!((s.default)().as_str(), "true" | "false"))
        .collect();
    assert!(booleans.iter().any(|s| s.env == "PLAIN_WS"), "{booleans:?}");
    for s in &booleans {
        for value in [
            "1", "0", "true", "false", "yes", "no", "on", "off", "TRUE", "Off", "Yes",
        ] {
            let (code, stderr) = run_with_env(s.env, value);
            assert!(
                code == Some(1) && stderr.contains("gateway-settings-test.toml"),
                "{}={value}: exit {code:?}: {stderr}",
                s.env
            );
        }
        let (code, stderr) = run_with_env(s.env, "maybe");
        assert_eq!(code, Some(2), "{}=maybe: {stderr}", s.env);
        assert!(stderr.contains("not a boolean"), "{stderr}");
    }
}
