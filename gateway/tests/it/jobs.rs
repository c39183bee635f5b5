//! The built-ins: status, cancel, subscribe (also on another gateway),
//! unsubscribe; and other users' jobs behaving like unknown ones.

use gateway::ids::{JobRef, Owner};
use serde_json::json;

use crate::support::{demo_worker, Gw, Stack};

/// `rpc.status` reports state, result, attempts and timestamps.
#[tokio::test]
async fn status_of_a_completed_and_a_waiting_job() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    let r = c.call(1, "demo.echo", json!({"a": 1})).await;
    let job_id = r["jobId"].clone();
    let st = c.call(2, "rpc.status", json!({"jobId": job_id})).await;
    let st = &st["result"];
    assert_eq!(st["state"], "completed", "{st}");
    assert_eq!(st["result"], json!({"a": 1}));
    assert_eq!(st["attemptsMade"], 1);
    assert_eq!(st["method"], "echo");
    assert!(st["timestamps"]["created"].as_i64().unwrap() > 0);
    assert!(st["timestamps"]["finished"].as_i64().unwrap() > 0);

    let idle = Stack::without_worker(|_| {}).await;
    let mut c = idle.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo", "ack": true}))
        .await;
    let accepted = c.recv().await;
    let st = c
        .call(
            2,
            "rpc.status",
            json!({"jobId": accepted["params"]["jobId"]}),
        )
        .await;
    assert_eq!(st["result"]["state"], "waiting", "{st}");
}

/// Cancelling a waiting job removes it; its waiting request gets -32011.
#[tokio::test]
async fn cancel_a_waiting_job() {
    let s = Stack::without_worker(|_| {}).await;
    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo", "ack": true, "options": {"delay": 60000}})).await;
    let job_id = c.recv().await["params"]["jobId"].clone();
    c.send(json!({"jsonrpc": "2.0", "id": 2, "method": "rpc.cancel", "params": {"jobId": job_id}}))
        .await;
    let mut seen = std::collections::HashMap::new();
    while seen.len() < 2 {
        let r = c.recv().await;
        seen.insert(r["id"].as_i64().unwrap(), r);
    }
    assert_eq!(
        seen[&2]["result"],
        json!({"jobId": job_id, "cancelled": true, "state": "delayed"})
    );
    assert_eq!(seen[&1]["error"]["code"], -32011, "{}", seen[&1]);
    let st = c.call(3, "rpc.status", json!({"jobId": job_id})).await;
    assert_eq!(st["error"]["code"], -32003);
}

/// An active job is not stopped: the answer says so, and its result
/// still arrives.
#[tokio::test]
async fn cancel_an_active_job() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.sleep", "params": {"ms": 1500, "steps": 5}})).await;
    let progress = c.recv().await;
    assert_eq!(progress["method"], "rpc.progress", "running: {progress}");
    let job_id = progress["params"]["jobId"].clone();
    c.send(json!({"jsonrpc": "2.0", "id": 2, "method": "rpc.cancel", "params": {"jobId": job_id}}))
        .await;
    let (cancel, _) = c.response(json!(2)).await;
    assert_eq!(cancel["result"]["cancelled"], false, "{cancel}");
    assert_eq!(cancel["result"]["state"], "active");
    assert!(cancel["result"]["message"]
        .as_str()
        .unwrap()
        .contains("cannot be stopped"));
    let (done, _) = c.response(json!(1)).await;
    assert_eq!(done["result"], json!({"slept": 1500}));
}

/// Another user's job id is answered exactly like an unknown id, by every
/// built-in.
#[tokio::test]
async fn someone_elses_job_is_not_found() {
    let s = Stack::start().await;
    let mut alice = s.gw.client("alice").await;
    let mine = alice.call(1, "demo.echo", json!({})).await["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut bob = s.gw.client("bob").await;
    let unknown = JobRef::for_call("demo", &Owner::of("bob"), Some("never-made"))
        .unwrap()
        .id;
    for method in [
        "rpc.status",
        "rpc.subscribe",
        "rpc.cancel",
        "rpc.unsubscribe",
    ] {
        let theirs = bob.call(1, method, json!({"jobId": mine})).await;
        let none = bob.call(2, method, json!({"jobId": unknown})).await;
        assert_eq!(theirs["error"]["code"], -32003, "{method}: {theirs}");
        // Identical but for the id echoed back.
        let masked = |mut v: serde_json::Value, id: &str| {
            assert_eq!(v["jobId"], id, "{method}: {v}");
            assert_eq!(v["error"]["data"]["jobId"], id, "{method}: {v}");
            v["jobId"] = json!("*");
            v["error"]["data"]["jobId"] = json!("*");
            v["id"] = json!(0);
            v
        };
        assert_eq!(masked(theirs, &mine), masked(none, &unknown), "{method}");
    }
    // And alice's job is untouched.
    let st = alice.call(2, "rpc.status", json!({"jobId": mine})).await;
    assert_eq!(st["result"]["state"], "completed");
}

/// Submit on one gateway, drop the socket, subscribe on a second gateway
/// sharing the Redis: the result arrives there, answering the subscribe.
#[tokio::test]
async fn subscribe_after_reconnect_on_another_gateway() {
    let s = Stack::start().await;
    let gw2 = Gw::start(s.env.config()).await;
    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.sleep", "params": {"ms": 1200, "steps": 4}, "ack": true}))
        .await;
    let job_id = c.recv().await["params"]["jobId"].clone();
    drop(c);
    let mut c2 = gw2.client("alice").await;
    c2.send(json!({"jsonrpc": "2.0", "id": "re", "method": "rpc.subscribe", "params": {"jobId": job_id}})).await;
    let (r, before) = c2.response(json!("re")).await;
    assert_eq!(r["result"], json!({"slept": 1200}), "{r}");
    assert_eq!(r["jobId"], job_id);
    assert!(
        before
            .iter()
            .all(|n| n["method"] == "rpc.progress" && n["params"]["id"] == "re"),
        "{before:?}"
    );
    // A finished job answers a subscribe at once.
    let r = c2.call(2, "rpc.subscribe", json!([job_id])).await;
    assert_eq!(r["result"], json!({"slept": 1200}));
}

/// A subscription taken before the worker starts still gets the end.
#[tokio::test]
async fn subscribe_then_the_job_runs() {
    let s = Stack::without_worker(|_| {}).await;
    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo", "params": {"late": true}, "jobId": "late-1", "ack": true}))
        .await;
    let job_id = c.recv().await["params"]["jobId"].clone();
    let mut other = s.gw.client("alice").await;
    other.send(json!({"jsonrpc": "2.0", "id": 9, "method": "rpc.subscribe", "params": {"jobId": job_id}, "ack": true})).await;
    assert_eq!(other.recv().await["method"], "rpc.accepted");
    let _worker = demo_worker(&s.env.connection().await).await;
    assert_eq!(
        other.response(json!(9)).await.0["result"],
        json!({"late": true})
    );
    assert_eq!(
        c.response(json!(1)).await.0["result"],
        json!({"late": true})
    );
}

/// `rpc.unsubscribe` answers the pending requests on the job with -32012.
#[tokio::test]
async fn unsubscribe_answers_pending_requests() {
    let s = Stack::without_worker(|_| {}).await;
    let mut c = s.gw.client("alice").await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "demo.echo", "ack": true}))
        .await;
    let job_id = c.recv().await["params"]["jobId"].clone();
    c.send(json!({"jsonrpc": "2.0", "id": 2, "method": "rpc.unsubscribe", "params": {"jobId": job_id}})).await;
    let first = c.recv().await;
    assert_eq!(first["id"], 1);
    assert_eq!(first["error"]["code"], -32012);
    let second = c.recv().await;
    assert_eq!(
        second["result"],
        json!({"jobId": job_id, "unsubscribed": 1})
    );
}

/// A call with a `jobId` and, right behind it on the same socket, a
/// subscribe to that job: the job is being added, so it exists (before,
/// 10 of 20 subscribes were answered -32003). Twice with fire-and-forget.
/// Big params make the add slower than the subscribe's read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_right_after_the_call_that_adds_the_job() {
    let s = Stack::start().await;
    let mut c = s.gw.client("alice").await;
    let owner = Owner::of("alice");
    for i in 0..22 {
        let key = format!("same-socket-{i}");
        let job_id = JobRef::for_call("demo", &owner, Some(&key)).unwrap().id;
        let call_id = if i < 20 { json!(i) } else { json!(null) };
        let pad = "p".repeat(48 * 1024);
        let mut call = json!({"jsonrpc": "2.0", "method": "demo.echo", "params": {"i": i, "pad": pad}, "jobId": key});
        if i < 20 {
            call["id"] = call_id.clone();
        }
        c.send(call).await;
        c.send(json!({"jsonrpc": "2.0", "id": format!("sub-{i}"), "method": "rpc.subscribe", "params": {"jobId": job_id}})).await;
        let mut want = vec![json!(format!("sub-{i}"))];
        if i < 20 {
            want.push(call_id);
        }
        while !want.is_empty() {
            let r = c.recv().await;
            if r.get("method").is_some() {
                continue;
            }
            assert_eq!(r["result"]["i"], json!(i), "try {i}: {}", r["error"]);
            want.retain(|id| *id != r["id"]);
        }
    }
}

/// A subscribe to a job of a service the gateway does not serve is
/// refused like a call to that service, before anything is read.
#[tokio::test]
async fn subscribe_to_an_unserved_service_is_refused() {
    let s = Stack::without_worker(|_| {}).await;
    let mut c = s.gw.client("alice").await;
    let job_id = JobRef::for_call("elsewhere", &Owner::of("alice"), Some("k"))
        .unwrap()
        .id;
    let call = c.call(1, "elsewhere.echo", json!({})).await;
    let sub = c.call(2, "rpc.subscribe", json!({"jobId": job_id})).await;
    assert_eq!(sub["error"]["code"], call["error"]["code"], "{sub}");
    assert_eq!(sub["error"]["code"], -32601);
}
