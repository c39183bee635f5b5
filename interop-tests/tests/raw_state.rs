//! Scenario 6: golden checks of the raw Redis state. The same adds and
//! transitions are made once by Node BullMQ and once by us; every key of the
//! queue, its type, members, scores and hash fields must match, after
//! normalising what is time- or token-dependent.

use std::collections::BTreeMap;
use std::time::Duration;

use bullmq_wire::{Connection, Queue, Worker, WorkerOptions};
use interop_tests::{behave, cfg, job_options, run, Lang, Process, RedisServer};
use serde_json::{json, Value};

const TS_FIELDS: [&str; 3] = ["timestamp", "processedOn", "finishedOn"];

fn adds() -> Vec<Value> {
    vec![
        json!({"name": "echo", "data": {"a": 1}, "opts": {"attempts": 3, "backoff": {"type": "exponential", "delay": 1000}, "removeOnComplete": 10, "keepLogs": 5}}),
        json!({"name": "echo", "data": {"p": 1}, "opts": {"priority": 5}}),
        json!({"name": "echo", "data": {"d": 1}, "opts": {"delay": 60000}}),
        json!({"name": "echo", "data": {"l": 1}, "opts": {"lifo": true, "jobId": "custom-id"}}),
        json!({"name": "fail", "data": {"times": 9}, "opts": {"attempts": 2, "backoff": {"type": "fixed", "delay": 60000}}}),
        json!({"name": "fail", "data": {"times": 9}, "opts": {"attempts": 1}}),
        json!({"name": "log", "data": {}, "opts": {"keepLogs": 1}}),
    ]
}

/// Replaces clock- and token-dependent values so two runs compare equal.
fn normalise(queue: &str, dump: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Some(keys) = dump["keys"].as_object() else {
        return out;
    };
    for (key, entry) in keys {
        let short = key.replacen(&format!("bull:{queue}:"), "", 1);
        let ty = entry["type"].as_str().unwrap_or("").to_string();
        let value = &entry["value"];
        let v = match ty.as_str() {
            "hash" => {
                let mut h = value.as_object().cloned().unwrap_or_default();
                for (f, v) in h.iter_mut() {
                    if TS_FIELDS.contains(&f.as_str()) {
                        *v = json!("<ts>");
                    } else if f == "opts" || f == "data" || f == "returnvalue" || f == "progress" {
                        *v =
                            serde_json::from_str(v.as_str().unwrap_or("null")).unwrap_or(v.clone());
                    } else if f == "stacktrace" {
                        let n = serde_json::from_str::<Vec<Value>>(v.as_str().unwrap_or("[]"))
                            .map(|a| a.len())
                            .unwrap_or(0);
                        *v = json!(format!("<{n} traces>"));
                    }
                }
                if short == "meta" {
                    // Node's Queue and ours both write these; other fields compare as is
                    h.remove("version");
                }
                json!(h)
            }
            "string" if short.ends_with(":lock") => json!("<token>"),
            "string" if short == "stalled-check" => json!("<ts>"),
            "zset" => {
                let mut pairs: Vec<Value> = value
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| {
                        let score = p[1].as_f64().unwrap_or(0.0);
                        if score > 1e12 {
                            json!([p[0], "<ts>"])
                        } else {
                            p
                        }
                    })
                    .collect();
                // members whose scores are clock readings sort by member, so
                // two jobs finishing in another order or millisecond compare equal
                pairs.sort_by(|a, b| {
                    (a[1] != "<ts>", a[0].as_str()).cmp(&(b[1] != "<ts>", b[0].as_str()))
                });
                json!(pairs)
            }
            "stream" => {
                let events: Vec<Value> = value
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| {
                        let mut f = e[1].clone();
                        if f.get("delay").is_some() {
                            f["delay"] = json!("<ts>");
                        }
                        f
                    })
                    .filter(|f| f["event"] != "drained")
                    .collect();
                json!(events)
            }
            _ => value.clone(),
        };
        out.insert(
            short,
            json!({"type": ty, "value": v, "expires": entry.get("pttl").is_some()}),
        );
    }
    out
}

async fn run_with(
    server: &RedisServer,
    rust: bool,
) -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
    let q = interop_tests::queue_name();
    let jobs = adds();
    if rust {
        let conn = Connection::open(&server.url()).await.unwrap();
        let queue = Queue::new(&q, &conn).await.unwrap();
        for j in &jobs {
            queue
                .add(
                    j["name"].as_str().unwrap(),
                    &j["data"],
                    job_options(&j["opts"]),
                )
                .await
                .unwrap();
        }
    } else {
        run(Lang::Node, "add", cfg(server, &q, json!({"jobs": jobs}))).await;
    }
    let after_adds = normalise(
        &q,
        &run(Lang::Node, "raw", cfg(server, &q, json!({}))).await,
    );

    // process: 1, p, custom-id and log complete; 5 goes to delayed (retry); 6 fails
    let mut events = Process::start(
        Lang::Node,
        "events",
        cfg(server, &q, json!({"lastEventId": "0"})),
    )
    .await;
    let done = |v: &Value| {
        matches!(v["event"].as_str(), Some("completed" | "failed"))
            || (v["event"] == "delayed" && v["args"]["jobId"] == "5")
    };
    if rust {
        let conn = Connection::open(&server.url()).await.unwrap();
        let opts = WorkerOptions {
            name: Some("w1".into()),
            skip_stalled_check: true,
            ..Default::default()
        };
        let worker = Worker::start(&q, &conn, opts, behave).await.unwrap();
        events.wait_count(Duration::from_secs(30), 6, done).await;
        worker.close().await;
    } else {
        let worker = Process::start(
            Lang::Node,
            "worker",
            cfg(server, &q, json!({"name": "w1", "skipStalledCheck": true})),
        )
        .await;
        events.wait_count(Duration::from_secs(30), 6, done).await;
        worker.stop().await;
    }
    events.stop().await;
    let mut after_run = normalise(
        &q,
        &run(Lang::Node, "raw", cfg(server, &q, json!({}))).await,
    );
    // The marker is a wake-up hint: whether an idle worker already popped it
    // when the snapshot is taken depends on timing, not on the protocol.
    after_run.remove("marker");
    (after_adds, after_run)
}

fn assert_same_state(what: &str, node: &BTreeMap<String, Value>, rust: &BTreeMap<String, Value>) {
    let keys: std::collections::BTreeSet<&String> = node.keys().chain(rust.keys()).collect();
    let mut diffs = Vec::new();
    for k in keys {
        if node.get(k) != rust.get(k) {
            diffs.push(format!(
                "  {k}:\n    node: {}\n    rust: {}",
                json!(node.get(k)),
                json!(rust.get(k))
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: raw state differs\n{}",
        diffs.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_state_matches_node_after_adds_and_transitions() {
    let server = RedisServer::start();
    let (node_adds, node_run) = run_with(&server, false).await;
    let (rust_adds, rust_run) = run_with(&server, true).await;
    assert!(
        node_adds.contains_key("wait")
            && node_adds.contains_key("delayed")
            && node_adds.contains_key("prioritized")
    );
    assert_same_state("after adds", &node_adds, &rust_adds);
    assert!(node_run.contains_key("completed") && node_run.contains_key("failed"));
    assert_same_state("after processing", &node_run, &rust_run);
}
