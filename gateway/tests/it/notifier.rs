//! What the notifier reads: a call's job is read once when it ends soon
//! after it starts, not at all when its worker publishes the result, and
//! an end that is the job's second write still arrives.

use serde_json::json;

use bullmq_wire::WorkerOptions;

use crate::support::{demo_worker_with, Stack};

/// `gateway_notifier_reads_total` from `/metrics`.
async fn reads(s: &Stack) -> u64 {
    let (_, text) = s.gw.http_get("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix("gateway_notifier_reads_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no reads counter in:\n{text}"))
}

/// The move to active is not read when the end follows within the
/// activation delay: 20 quick calls cost about 20 reads, not 40 (one for
/// the activation and one for the end each, as before).
#[tokio::test]
async fn a_quick_call_is_read_once() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    let before = reads(&s).await;
    let calls = 20;
    for i in 0..calls {
        let r = c.call(i, "demo.echo", json!({"i": i})).await;
        assert_eq!(r["result"], json!({"i": i}), "{r}");
    }
    let spent = reads(&s).await - before;
    // a call whose end comes later than the delay (a loaded machine) is
    // read twice: allow a few, but not one read per write
    assert!(
        (calls as u64..=calls as u64 + 5).contains(&spent),
        "{spent} reads for {calls} calls"
    );
}

/// A worker that publishes its results (`publish_results`, on in the
/// `worker` binary and `--dev`): quick calls are answered without a read.
#[tokio::test]
async fn a_published_result_is_not_read() {
    let s = Stack::without_worker(|_| {}).await;
    let opts = WorkerOptions {
        concurrency: 4,
        publish_results: true,
        ..Default::default()
    };
    let _worker = demo_worker_with(&s.env.connection().await, opts).await;
    let mut c = s.gw.client("alice").await;
    let before = reads(&s).await;
    let calls = 20;
    for i in 0..calls {
        let r = c.call(i, "demo.echo", json!({"i": i})).await;
        assert_eq!(r["result"], json!({"i": i}), "{r}");
    }
    let spent = reads(&s).await - before;
    // only a call whose end comes later than the activation delay is read
    assert!(spent <= 5, "{spent} reads for {calls} calls");
}

/// A worker that wrote nothing when it took the job (so its end is the
/// job's second write, which the notifier defers): the end still reaches
/// the client.
#[tokio::test]
async fn an_end_that_is_the_second_write_is_delivered() {
    let s = Stack::without_worker(|_| {}).await;
    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo", "ack": true}))
        .await;
    let accepted = c.recv().await;
    assert_eq!(accepted["method"], "rpc.accepted", "{accepted}");
    let job_id = accepted["params"]["jobId"].as_str().unwrap().to_string();
    let conn = s.env.connection().await;
    let mut redis = conn.command_connection();
    let _: () = redis::cmd("HSET")
        .arg(format!("bull:demo:{job_id}"))
        .arg("returnvalue")
        .arg(r#"{"by":"hand"}"#)
        .arg("finishedOn")
        .arg(crate::support::now() * 1000)
        .query_async(&mut redis)
        .await
        .unwrap();
    let (r, _) = c.response(json!(1)).await;
    assert_eq!(r["result"], json!({"by": "hand"}), "{r}");
}
