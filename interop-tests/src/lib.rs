//! Support for the conformance suite: the pinned Node and Python BullMQ
//! drivers (`node/driver.mjs`, `python/driver.py`) run as child processes,
//! JSON in and JSON out, against a redis-server owned by the test. Where the
//! clients are and how they are installed is [`clients`], shared with the
//! gateway's tests.

pub mod clients;
pub mod fleet;
pub mod scenarios;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub use bullmq_wire::testing::{RedisCluster, RedisSentinelSet, RedisServer};
pub use clients::setup;

/// Which real client runs a driver command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// npm `bullmq` 6.7.0.
    Node,
    /// PyPI `bullmq` 3.4.4.
    Python,
    /// This library, in its own process (`src/bin/rust_driver.rs`; workers only).
    Rust,
}

fn command(lang: Lang, cmd: &str, cfg: &Value) -> Command {
    let mut c = match lang {
        Lang::Node => clients::node_command(clients::interop_dir().join("node/driver.mjs")),
        Lang::Python => clients::python_command(clients::interop_dir().join("python/driver.py")),
        Lang::Rust => {
            let mut c = Command::new(rust_driver_path());
            c.kill_on_drop(true);
            c
        }
    };
    c.arg(cmd).arg(cfg.to_string());
    c
}

/// `target/<profile>/rust_driver`, built by cargo alongside the tests
/// (tests live in `target/<profile>/deps`).
fn rust_driver_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| {
            if d.ends_with("deps") {
                d.parent()
            } else {
                Some(d)
            }
        })
        .expect("target dir");
    dir.join("rust_driver")
}

/// Runs a one-shot driver command and returns its JSON answer; panics with
/// the driver's error otherwise (tests only).
pub async fn run(lang: Lang, cmd: &str, cfg: Value) -> Value {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        command(lang, cmd, &cfg)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{lang:?} {cmd} timed out"))
    .unwrap_or_else(|e| panic!("{lang:?} {cmd} did not start: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{lang:?} {cmd}: bad output ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success(),
        "{lang:?} {cmd} failed: {v}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

/// A long-running driver (worker, events) and the JSON lines it prints.
pub struct Process {
    child: Child,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Everything received so far.
    pub seen: Vec<Value>,
}

impl Process {
    /// Starts `cmd` and waits for its `{"ready":true}` line.
    pub async fn start(lang: Lang, cmd: &str, cfg: Value) -> Process {
        let mut child = command(lang, cmd, &cfg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{lang:?} {cmd} did not start: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        let mut p = Process {
            child,
            lines,
            seen: Vec::new(),
        };
        p.wait_for(Duration::from_secs(60), |v| {
            v.get("ready") == Some(&json!(true))
        })
        .await;
        p
    }

    /// Waits for a line matching `pred` (and returns it), keeping every line.
    pub async fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(v)) => {
                    self.seen.push(v.clone());
                    if let Some(err) = v.get("error") {
                        panic!("driver error: {err}");
                    }
                    if pred(&v) {
                        return v;
                    }
                }
                Ok(None) => panic!("driver exited; lines so far: {:?}", self.seen),
                Err(_) => panic!("timed out after {timeout:?}; lines so far: {:?}", self.seen),
            }
        }
    }

    /// Collects lines until `n` of them match `pred`.
    pub async fn wait_count(&mut self, timeout: Duration, n: usize, pred: impl Fn(&Value) -> bool) {
        let mut count = self.seen.iter().filter(|v| pred(v)).count();
        let deadline = tokio::time::Instant::now() + timeout;
        while count < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            self.wait_for(left, &pred).await;
            count += 1;
        }
    }

    /// Asks the driver to close (stdin EOF) and waits for it to exit.
    pub async fn stop(mut self) -> Vec<Value> {
        drop(self.child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        while let Ok(v) = self.lines.try_recv() {
            self.seen.push(v);
        }
        self.seen
    }

    /// Takes the lines printed so far without waiting.
    pub fn drain(&mut self) {
        while let Ok(v) = self.lines.try_recv() {
            self.seen.push(v);
        }
    }

    /// How the process ended, if it has (None while it runs).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// `kill -9`: the process dies holding whatever it holds.
    pub async fn kill9(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// A fresh, unique queue name.
pub fn queue_name() -> String {
    format!("iq{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// The Redis a scenario runs on: one server, a cluster or a Sentinel set,
/// with the key prefix BullMQ clients use there.
pub trait Deployment {
    /// The URL every client is given (`redis://`, `redis+cluster://`,
    /// `redis+sentinel://`).
    fn url(&self) -> String;
    /// The key prefix: a hash tag on a cluster, so each queue is in one slot.
    fn prefix(&self) -> &'static str {
        "bull"
    }
}

impl Deployment for RedisServer {
    fn url(&self) -> String {
        RedisServer::url(self)
    }
}

/// Every queue in one slot: the keys share the `{bull}` hash tag.
impl Deployment for RedisCluster {
    fn url(&self) -> String {
        RedisCluster::url(self)
    }
    fn prefix(&self) -> &'static str {
        "{bull}"
    }
}

impl Deployment for RedisSentinelSet {
    fn url(&self) -> String {
        RedisSentinelSet::url(self)
    }
}

/// Our connection to a deployment, with its prefix.
pub async fn connect(deployment: &(impl Deployment + ?Sized)) -> bullmq_wire::Connection {
    let options = bullmq_wire::RedisOptions::new(deployment.url()).with_prefix(deployment.prefix());
    bullmq_wire::Connection::connect(options)
        .await
        .expect("connect to the test's redis")
}

/// The common driver config.
pub fn cfg(server: &(impl Deployment + ?Sized), queue: &str, extra: Value) -> Value {
    let mut base = json!({"redisUrl": server.url(), "queue": queue, "prefix": server.prefix()});
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// The Rust twin of the drivers' processors (`node/lib/processors.mjs`):
/// behaviour chosen by job name, so every language does the same work.
pub async fn behave(mut job: bullmq_wire::Job) -> Result<Value, bullmq_wire::JobError> {
    use bullmq_wire::JobError;
    match job.name.as_str() {
        "echo" => Ok(json!({"echo": job.data})),
        "sleep" => {
            let ms = job.data["ms"].as_u64().unwrap_or(0);
            let steps = job.data["steps"].as_u64().unwrap_or(1).max(1);
            for i in 1..=steps {
                tokio::time::sleep(Duration::from_millis(ms / steps)).await;
                job.update_progress(json!(((100 * i) as f64 / steps as f64).round() as u64))
                    .await?;
            }
            Ok(json!({"slept": ms}))
        }
        "fail" => {
            let times = job.data["times"].as_i64().unwrap_or(0);
            if job.attempts_made < times {
                Err(JobError::new("demo failure"))
            } else {
                Ok(json!({"attempts": job.attempts_made + 1}))
            }
        }
        "unrecoverable" => Err(JobError::unrecoverable("unrecoverable failure")),
        "log" => {
            job.log("line 1").await?;
            job.log("line 2").await?;
            job.update_progress(json!({"stage": "half"})).await?;
            Ok(json!({"logged": 2}))
        }
        "hang" => std::future::pending().await,
        "count" => Ok(json!({"ok": true})),
        _ => Ok(Value::Null),
    }
}

/// A BullMQ `removeOnComplete` / `removeOnFail` value (`true`, a count, or
/// `{age, count, limit}`) as ours; None for anything else (absent).
pub fn keep_jobs(v: &Value) -> Option<bullmq_wire::KeepJobs> {
    use bullmq_wire::KeepJobs;
    match v {
        Value::Bool(b) => Some(KeepJobs::Remove(*b)),
        Value::Number(n) => n.as_i64().map(KeepJobs::Count),
        Value::Object(m) => Some(KeepJobs::Policy {
            age: m
                .get("age")
                .and_then(Value::as_u64)
                .map(Duration::from_secs),
            count: m.get("count").and_then(Value::as_i64),
            limit: m.get("limit").and_then(Value::as_i64),
        }),
        _ => None,
    }
}

/// A JSON count of milliseconds.
fn millis(v: &Value) -> Option<Duration> {
    v.as_u64().map(Duration::from_millis)
}

/// Converts the drivers' job options (BullMQ's JSON names) to ours.
pub fn job_options(opts: &Value) -> bullmq_wire::JobOptions {
    use bullmq_wire::{Backoff, JobOptions};
    let backoff = opts.get("backoff").and_then(|b| {
        if let Some(d) = millis(b) {
            return Some(Backoff::fixed(d));
        }
        let delay = millis(&b["delay"]).unwrap_or_default();
        let jitter = b["jitter"].as_f64();
        match b["type"].as_str()? {
            "fixed" => Some(Backoff::Fixed { delay, jitter }),
            "exponential" => Some(Backoff::Exponential { delay, jitter }),
            other => Some(Backoff::Custom {
                kind: other.to_string(),
                delay: Some(delay),
            }),
        }
    });
    JobOptions {
        job_id: opts["jobId"].as_str().map(str::to_string),
        delay: millis(&opts["delay"]),
        priority: opts["priority"].as_i64(),
        lifo: opts["lifo"].as_bool().unwrap_or(false),
        attempts: opts["attempts"].as_i64(),
        backoff,
        remove_on_complete: opts.get("removeOnComplete").and_then(keep_jobs),
        remove_on_fail: opts.get("removeOnFail").and_then(keep_jobs),
        keep_logs: opts["keepLogs"].as_i64(),
        timestamp: opts["timestamp"].as_i64(),
        stack_trace_limit: opts["stackTraceLimit"].as_i64(),
        timeout: None,
        on_failure: [
            (
                "failParentOnFailure",
                bullmq_wire::ParentOnFailure::FailParent,
            ),
            (
                "continueParentOnFailure",
                bullmq_wire::ParentOnFailure::ContinueParent,
            ),
            (
                "ignoreDependencyOnFailure",
                bullmq_wire::ParentOnFailure::IgnoreDependency,
            ),
            (
                "removeDependencyOnFailure",
                bullmq_wire::ParentOnFailure::RemoveDependency,
            ),
        ]
        .into_iter()
        .find(|(name, _)| opts[*name] == true)
        .map(|(_, p)| p),
        deduplication: opts.get("deduplication").and_then(|d| {
            let mut de = bullmq_wire::Deduplication::new(d.get("id")?.as_str()?);
            de.ttl = millis(&d["ttl"]);
            de.extend = d["extend"] == true;
            de.replace = d["replace"] == true;
            de.keep_last_if_active = d["keepLastIfActive"] == true;
            de.reschedule = d["reschedule"] == true;
            Some(de)
        }),
        parent: opts.get("parent").and_then(|p| {
            Some(bullmq_wire::ParentRef {
                id: p["id"].as_str()?.to_string(),
                queue: p["queue"].as_str()?.to_string(),
            })
        }),
        reply_to: None,
    }
}

/// Fails the test with every path where two job views differ (the queue's
/// own name, `queueQualifiedName`, aside: each run uses a fresh queue).
pub fn assert_same_json(what: &str, expected: &Value, actual: &Value) {
    let mut diffs = Vec::new();
    json_diff("", expected, actual, &mut diffs);
    assert!(
        diffs.is_empty(),
        "{what} differ (expected vs actual):\n{}",
        diffs.join("\n")
    );
}

fn json_diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys
                .into_iter()
                .filter(|k| k.as_str() != "queueQualifiedName")
            {
                json_diff(
                    &format!("{path}.{k}"),
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                json_diff(&format!("{path}[{i}]"), p, q, out);
            }
        }
        _ if a != b => out.push(format!("  {path}: {a} vs {b}")),
        _ => {}
    }
}
