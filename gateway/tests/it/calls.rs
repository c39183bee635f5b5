//! A call's whole life: enqueued, acknowledged, progressing, retried,
//! answered once.

use bullmq_wire::{JobState, Queue};
use gateway::ids::{JobRef, Owner};
use serde_json::{json, Value};

use crate::support::Stack;

/// A call returns the job's result with the request's id and the job id.
#[tokio::test]
async fn call_returns_the_result() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    let r = c.call(1, "demo.echo", json!({"hello": "world"})).await;
    assert_eq!(r["jsonrpc"], "2.0");
    assert_eq!(r["result"], json!({"hello": "world"}));
    assert!(r.get("error").is_none());
    let job_id = r["jobId"].as_str().unwrap();
    assert!(
        job_id.starts_with(&format!("demo.{}.", Owner::of("alice").as_str())),
        "{job_id}"
    );
}

/// With `ack: true` the gateway says `rpc.accepted` at once, then answers.
#[tokio::test]
async fn ack_comes_before_the_result() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "id": "a", "method": "demo.echo", "params": {"x": 1}, "ack": true})).await;
    let first = c.recv().await;
    assert_eq!(first["method"], "rpc.accepted");
    assert_eq!(first["params"]["id"], "a");
    let (r, _) = c.response(json!("a")).await;
    assert_eq!(r["result"], json!({"x": 1}));
    assert_eq!(r["jobId"], first["params"]["jobId"]);
}

/// Progress reported by the worker is pushed as `rpc.progress`, in order,
/// before the result.
#[tokio::test]
async fn progress_is_pushed() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "id": 7, "method": "demo.sleep", "params": {"ms": 600, "steps": 3}})).await;
    let (r, before) = c.response(json!(7)).await;
    assert_eq!(r["result"], json!({"slept": 600}));
    let steps: Vec<i64> = before
        .iter()
        .map(|n| {
            assert_eq!(n["method"], "rpc.progress");
            assert_eq!(n["params"]["id"], 7);
            assert_eq!(n["params"]["jobId"], r["jobId"]);
            n["params"]["progress"]["step"].as_i64().unwrap()
        })
        .collect();
    assert!(!steps.is_empty(), "at least one progress notification");
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "in order, no repeats: {steps:?}"
    );
}

/// A socket drops its job-update channel when nothing is watched and makes
/// a new one at the next watch: each call after an idle spell still gets its
/// progress and its result.
#[tokio::test]
async fn calls_after_an_idle_spell_get_progress_and_results() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    for round in 0..3 {
        c.send(json!({"jsonrpc": "2.0", "id": round, "method": "demo.sleep", "params": {"ms": 300, "steps": 3}})).await;
        let (r, before) = c.response(json!(round)).await;
        assert_eq!(r["result"], json!({"slept": 300}), "round {round}");
        assert!(
            before.iter().any(|n| n["method"] == "rpc.progress"),
            "round {round}: progress before the result"
        );
        let echoed = c
            .call(100 + round, "demo.echo", json!({"round": round}))
            .await;
        assert_eq!(echoed["result"], json!({"round": round}));
    }
}

/// A job that fails twice and succeeds on its third attempt answers with
/// the result; the failures are not reported as ends.
#[tokio::test]
async fn a_job_that_retries_then_succeeds() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    c.send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "demo.flaky", "params": {"failures": 2},
                  "options": {"attempts": 3}}),
    )
    .await;
    let (r, before) = c.response(json!(1)).await;
    assert_eq!(r["result"], json!({"attempt": 3}), "{r}");
    assert!(before.is_empty(), "{before:?}");
}

/// A job that fails for good answers with -32010 and BullMQ's
/// failedReason and attemptsMade.
#[tokio::test]
async fn a_job_that_fails_for_good() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    c.send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "demo.fail", "params": {"message": "no luck"},
                  "options": {"attempts": 2, "backoff": 10}}),
    )
    .await;
    let (r, _) = c.response(json!(1)).await;
    assert_eq!(r["error"]["code"], -32010, "{r}");
    assert_eq!(r["error"]["data"]["failedReason"], "no luck");
    assert_eq!(r["error"]["data"]["attemptsMade"], 2);
    assert!(r["jobId"].is_string());
}

/// A batch is answered with one array, in request order, once every
/// member has its answer; notifications in it get none.
#[tokio::test]
async fn batch_is_answered_with_one_array() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    c.send(json!([
        {"jsonrpc": "2.0", "id": 1, "method": "demo.sleep", "params": {"ms": 200}},
        {"jsonrpc": "2.0", "id": 2, "method": "demo.echo", "params": {"n": 2}},
        {"jsonrpc": "2.0", "method": "demo.echo", "params": {"n": 3}},
        {"jsonrpc": "2.0", "id": 4, "method": "nope.echo"},
        {"foo": "bar"}
    ]))
    .await;
    let (v, before) = c.recv_until(|v| v.is_array()).await;
    assert!(
        before.iter().all(|n| n["method"] == "rpc.progress"),
        "{before:?}"
    );
    let arr = v.as_array().unwrap();
    let ids: Vec<&Value> = arr.iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, vec![&json!(1), &json!(2), &json!(4), &Value::Null]);
    assert_eq!(arr[0]["result"], json!({"slept": 200}));
    assert_eq!(arr[1]["result"], json!({"n": 2}));
    assert_eq!(arr[2]["error"]["code"], -32601);
    assert_eq!(arr[3]["error"]["code"], -32600);
}

/// A request without id is enqueued and never answered; resending the
/// same `jobId` with an id attaches to that one job instead of adding
/// another.
#[tokio::test]
async fn fire_and_forget_and_idempotent_resend() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "method": "demo.echo", "params": {"v": 1}, "jobId": "ff-1"}))
        .await;
    c.send(json!({"jsonrpc": "2.0", "id": 2, "method": "demo.echo", "params": {"v": 2}, "jobId": "ff-1"})).await;
    let (r, before) = c.response(json!(2)).await;
    assert!(
        before.is_empty(),
        "the notification got no answer: {before:?}"
    );
    let expected = JobRef::for_call("demo", &Owner::of("alice"), Some("ff-1")).unwrap();
    assert_eq!(r["jobId"], expected.id.as_str());
    // Whichever add ran first created the job; the result is its data.
    assert!(
        r["result"] == json!({"v": 1}) || r["result"] == json!({"v": 2}),
        "{r}"
    );
    // A resend after the end is answered at once from the stored result.
    let again = c.call(3, "demo.echo", json!({"v": 3})).await;
    assert_ne!(again["jobId"], r["jobId"], "no jobId: a new job");
    c.send(json!({"jsonrpc": "2.0", "id": 4, "method": "demo.echo", "params": {"v": 4}, "jobId": "ff-1"})).await;
    let (resent, _) = c.response(json!(4)).await;
    assert_eq!(resent["result"], r["result"]);
    let queue = Queue::handle("demo", &s.env.connection().await).unwrap();
    let counts = queue.get_job_counts(&[JobState::Completed]).await.unwrap();
    assert_eq!(
        counts[&JobState::Completed],
        2,
        "ff-1 once, plus the call without jobId"
    );
}

/// Params are checked against the method's JSON Schema from the config
/// file; failures are -32602 with every error listed.
#[tokio::test]
async fn params_must_match_the_schema() {
    let s = Stack::start_with(|c| {
        use gateway::config::FileConfig;
        let file = FileConfig::from_value(json!({"services": {"demo": {"methods": {
            "echo": {"schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
            "sleep": {}
        }}}}))
        .unwrap();
        FileConfig::add_services(file.services, &mut c.services).unwrap();
    })
    .await;
    let mut c = s.gw.client("alice").await;
    let bad = c.call(1, "demo.echo", json!({"name": 5})).await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    assert!(bad["error"]["data"]["errors"][0]
        .as_str()
        .unwrap()
        .contains("/name"));
    let good = c.call(2, "demo.echo", json!({"name": "x"})).await;
    assert_eq!(good["result"], json!({"name": "x"}));
    let unlisted = c.call(3, "demo.fail", json!({})).await;
    assert_eq!(
        unlisted["error"]["code"], -32601,
        "only listed methods when methods are configured"
    );
}
