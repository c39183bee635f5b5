//! Flows made by Node's FlowProducer, processed by Node workers and by ours:
//! a parent runs once its children complete and reads their values; a child
//! failing with failParentOnFailure fails the parent; continueParentOnFailure
//! and ignoreDependencyOnFailure release it. What Node reads afterwards must
//! be the same whichever language ran the jobs.

use std::time::Duration;

use bullmq_wire::{Connection, Worker, WorkerOptions};
use interop_tests::{behave, cfg, queue_name, run, Lang, Process, RedisServer};
use serde_json::{json, Value};

/// Child options for each case; children are `echo` jobs plus one failing
/// `unrecoverable` child carrying the policy.
fn flow(case: &str, parent_q: &str, child_q: &str) -> Value {
    let failing = match case {
        "ok" => json!({"name": "echo", "queueName": child_q, "data": {"c": 3}}),
        "fpof" => {
            json!({"name": "unrecoverable", "queueName": child_q, "data": {}, "opts": {"failParentOnFailure": true}})
        }
        "cpof" => {
            json!({"name": "unrecoverable", "queueName": child_q, "data": {}, "opts": {"continueParentOnFailure": true}})
        }
        "idof" => {
            json!({"name": "unrecoverable", "queueName": child_q, "data": {}, "opts": {"ignoreDependencyOnFailure": true}})
        }
        other => panic!("unknown case {other}"),
    };
    json!({
        "name": "echo", "queueName": parent_q, "data": {"parent": true},
        "children": [
            {"name": "echo", "queueName": child_q, "data": {"c": 1}},
            {"name": "echo", "queueName": child_q, "data": {"c": 2}},
            failing,
        ]
    })
}

/// What Node reads of the parent once it is done, with queue names and
/// generated ids taken out.
async fn run_case(server: &RedisServer, case: &str, lang: Lang) -> Value {
    run_case_from(server, case, Lang::Node, lang).await
}

/// A driver's flow tree (BullMQ's JSON) as ours.
fn flow_job(v: &Value) -> bullmq_wire::FlowJob {
    let mut job = bullmq_wire::FlowJob::new(
        v["name"].as_str().unwrap(),
        v["queueName"].as_str().unwrap(),
        v["data"].clone(),
    )
    .opts(interop_tests::job_options(
        v.get("opts").unwrap_or(&json!({})),
    ));
    for c in v["children"].as_array().into_iter().flatten() {
        job = job.child(flow_job(c));
    }
    job
}

/// `run_case` with the flow added by `producer` (Node's FlowProducer or ours).
async fn run_case_from(server: &RedisServer, case: &str, producer: Lang, lang: Lang) -> Value {
    let (pq, cq) = (queue_name(), queue_name());
    let parent_id = match producer {
        Lang::Node => {
            let tree = run(
                Lang::Node,
                "flow",
                cfg(server, &pq, json!({"flow": flow(case, &pq, &cq)})),
            )
            .await;
            tree["tree"]["id"].as_str().unwrap().to_string()
        }
        _ => {
            let conn = Connection::open(&server.url()).await.unwrap();
            let node = bullmq_wire::FlowProducer::new(&conn)
                .add(flow_job(&flow(case, &pq, &cq)))
                .await
                .unwrap();
            assert_eq!(node.children.len(), 3);
            assert!(
                uuid::Uuid::parse_str(&node.id).is_ok(),
                "a generated id is a uuid: {}",
                node.id
            );
            node.id
        }
    };
    let mut events = Process::start(
        Lang::Node,
        "events",
        cfg(server, &pq, json!({"lastEventId": "0"})),
    )
    .await;
    let mut node_workers = Vec::new();
    let mut rust_workers = Vec::new();
    // The children run one at a time, in the order they were added, so the
    // failing one (last) ends after the others: with continueParentOnFailure
    // a child that fails first would release the parent while its siblings
    // are pending, and the parent's end would depend on which child won.
    for (q, concurrency) in [(&pq, 3), (&cq, 1)] {
        match lang {
            Lang::Node | Lang::Python => node_workers.push(
                Process::start(
                    lang,
                    "worker",
                    cfg(server, q, json!({ "concurrency": concurrency })),
                )
                .await,
            ),
            _ => {
                let conn = Connection::open(&server.url()).await.unwrap();
                let opts = WorkerOptions {
                    concurrency,
                    ..Default::default()
                };
                rust_workers.push(Worker::start(q, &conn, opts, behave).await.unwrap());
            }
        }
    }
    let pid = parent_id.clone();
    events
        .wait_for(Duration::from_secs(30), move |v| {
            (v["event"] == "completed" || v["event"] == "failed")
                && v["args"]["jobId"] == pid.as_str()
        })
        .await;
    for w in node_workers {
        w.stop().await;
    }
    for w in rust_workers {
        w.close().await;
    }
    events.stop().await;
    let out = run(
        Lang::Node,
        "parent",
        cfg(server, &pq, json!({"id": parent_id})),
    )
    .await;
    let text = out
        .to_string()
        .replace(&format!("bull:{cq}:"), "bull:<children>:")
        .replace(&pq, "<parent>");
    let mut v: Value = serde_json::from_str(&text).unwrap();
    // child ids are uuids: keep the values, sorted (`dependencies` holds
    // the same by child key)
    v.as_object_mut().unwrap().remove("dependencies");
    for field in ["childrenValues", "ignoredFailures"] {
        let mut vals: Vec<String> = v[field]
            .as_object()
            .map(|m| m.values().map(|x| x.to_string()).collect())
            .unwrap_or_default();
        vals.sort();
        v[field] = json!(vals);
    }
    if let Some(reason) = v["job"]["failedReason"].as_str() {
        let generic = reason
            .split("bull:<children>:")
            .next()
            .unwrap_or("")
            .to_string()
            + "bull:<children>:<id> failed";
        v["job"]["failedReason"] = json!(generic);
    }
    v["job"]["id"] = json!("<parent id>");
    v["job"]["stacktrace"] = json!(v["job"]["stacktrace"].as_array().map(|a| a.len()));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_run_the_same_on_rust_workers() {
    let server = RedisServer::start();
    for case in ["ok", "fpof", "cpof", "idof"] {
        let node = run_case(&server, case, Lang::Node).await;
        let rust = run_case(&server, case, Lang::Rust).await;
        assert_eq!(node, rust, "flow case {case}: node {node:#}\nrust {rust:#}");
        match case {
            "fpof" => assert_eq!(node["state"], "failed", "{node:#}"),
            _ => assert_eq!(node["state"], "completed", "{node:#}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_added_from_rust_run_on_python_workers_as_node_added_ones() {
    let server = RedisServer::start();
    for case in ["ok", "fpof"] {
        let node = run_case_from(&server, case, Lang::Node, Lang::Python).await;
        let rust = run_case_from(&server, case, Lang::Rust, Lang::Python).await;
        assert_eq!(
            node, rust,
            "flow case {case} on python workers: added by node {node:#}\nadded by rust {rust:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_added_from_rust_run_as_node_added_ones() {
    let server = RedisServer::start();
    for case in ["ok", "fpof", "idof"] {
        let node = run_case_from(&server, case, Lang::Node, Lang::Node).await;
        let rust = run_case_from(&server, case, Lang::Rust, Lang::Node).await;
        assert_eq!(
            node, rust,
            "flow case {case}: added by node {node:#}\nadded by rust {rust:#}"
        );
    }
}

/// A three-level tree over two queues with every per-job option a flow
/// node takes, custom ids throughout.
fn rich_flow(p: &str, c: &str) -> Value {
    json!({
        "name": "root", "queueName": p, "data": {"r": 1}, "opts": {"jobId": "root1", "attempts": 2},
        "children": [
            {"name": "kid", "queueName": c, "data": {"k": 1}, "opts": {"jobId": "kid1", "failParentOnFailure": true}},
            {"name": "kid", "queueName": c, "data": {"k": 2}, "opts": {"jobId": "kid2", "delay": 5000, "ignoreDependencyOnFailure": true}},
            {"name": "kid", "queueName": c, "data": {"k": 3}, "opts": {"jobId": "kid3", "priority": 7, "continueParentOnFailure": true, "removeOnComplete": true}},
            {"name": "mid", "queueName": p, "data": {"m": 1}, "opts": {"jobId": "mid1", "priority": 4}, "children": [
                {"name": "leaf", "queueName": c, "data": {}, "opts": {"jobId": "leaf1", "removeDependencyOnFailure": true, "lifo": true}},
            ]},
        ],
    })
}

/// Both queues' keys with the queue names and the clock taken out.
async fn flow_state(server: &RedisServer, p: &str, c: &str) -> Value {
    let mut out = serde_json::Map::new();
    for (q, tag) in [(p, "P"), (c, "C")] {
        let raw = run(Lang::Node, "raw", cfg(server, q, json!({}))).await;
        for (key, v) in raw["keys"].as_object().unwrap() {
            let text = v["value"]
                .to_string()
                .replace(&format!("bull:{p}"), "bull:<P>")
                .replace(&format!("bull:{c}"), "bull:<C>");
            let mut value: Value = serde_json::from_str(&text).unwrap();
            let short = key.replace(&format!("bull:{q}:"), &format!("{tag}:"));
            match short.split(':').nth(1) {
                // scores are times (jobs added in the same ms sort by id)
                Some("delayed") | Some("waiting-children") => {
                    let mut ids: Vec<String> = value
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| m[0].as_str().unwrap().to_string())
                        .collect();
                    ids.sort();
                    value = json!(ids);
                }
                Some("events") => {
                    value = json!(value
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| format!(
                            "{} {}",
                            e[1]["event"].as_str().unwrap(),
                            e[1]["jobId"].as_str().unwrap_or("")
                        ))
                        .collect::<Vec<_>>());
                }
                Some("marker") => {
                    value = json!(value
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| m[0].clone())
                        .collect::<Vec<_>>())
                }
                _ => {}
            }
            if let Some(h) = value.as_object_mut() {
                h.remove("timestamp");
                for f in ["opts", "parent"] {
                    if let Some(text) = h.get(f).and_then(Value::as_str) {
                        let parsed: Value = serde_json::from_str(text).unwrap();
                        h.insert(f.into(), parsed);
                    }
                }
            }
            // a dependency set's members are keys of both queues
            if let Some(set) = value.as_array_mut() {
                if short.ends_with(":dependencies") {
                    set.sort_by_key(|m| m.to_string());
                }
            }
            out.insert(short, value);
        }
    }
    Value::Object(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_flow_producer_leaves_what_node_leaves() {
    let server = RedisServer::start();
    let (p1, c1) = (queue_name(), queue_name());
    run(
        Lang::Node,
        "flow",
        cfg(&server, &p1, json!({"flow": rich_flow(&p1, &c1)})),
    )
    .await;
    let node = flow_state(&server, &p1, &c1).await;

    let (p2, c2) = (queue_name(), queue_name());
    let conn = Connection::open(&server.url()).await.unwrap();
    let tree = bullmq_wire::FlowProducer::new(&conn)
        .add(flow_job(&rich_flow(&p2, &c2)))
        .await
        .unwrap();
    assert_eq!(tree.id, "root1");
    assert_eq!(
        tree.children
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        ["kid1", "kid2", "kid3", "mid1"]
    );
    assert_eq!(tree.children[3].children[0].id, "leaf1");
    let rust = flow_state(&server, &p2, &c2).await;
    interop_tests::assert_same_json("flow state", &node, &rust);
    assert!(
        node.get("P:waiting-children").is_some() && node.get("C:kid2").is_some(),
        "{node:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flows_are_refused_whole() {
    let server = RedisServer::start();
    let (p, c) = (queue_name(), queue_name());
    let conn = Connection::open(&server.url()).await.unwrap();
    let producer = bullmq_wire::FlowProducer::new(&conn);
    let mut bad = rich_flow(&p, &c);
    bad["children"][3]["children"][0]["opts"]["jobId"] = json!("12");
    assert!(matches!(
        producer.add(flow_job(&bad)).await,
        Err(bullmq_wire::Error::InvalidInput { .. })
    ));
    let mut bad = rich_flow(&p, &c);
    bad["children"][0]["queueName"] = json!("a:b");
    assert!(matches!(
        producer.add(flow_job(&bad)).await,
        Err(bullmq_wire::Error::InvalidInput { .. })
    ));
    let mut bad = rich_flow(&p, &c);
    bad["opts"]["failParentOnFailure"] = json!(true);
    assert!(matches!(
        producer.add(flow_job(&bad)).await,
        Err(bullmq_wire::Error::InvalidInput { .. })
    ));
    // nothing was written
    let raw = run(
        Lang::Node,
        "raw",
        cfg(&server, &p, json!({"pattern": "bull:*"})),
    )
    .await;
    assert_eq!(raw["keys"], json!({}), "{raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_parent_reads_its_children_as_node_reads_them() {
    let server = RedisServer::start();
    for case in ["ok", "cpof", "idof"] {
        let (pq, cq) = (queue_name(), queue_name());
        let tree = run(
            Lang::Node,
            "flow",
            cfg(&server, &pq, json!({"flow": flow(case, &pq, &cq)})),
        )
        .await;
        let parent_id = tree["tree"]["id"].as_str().unwrap().to_string();
        let conn = Connection::open(&server.url()).await.unwrap();
        let children = Worker::start(&cq, &conn, WorkerOptions::default(), behave)
            .await
            .unwrap();
        let parent = Worker::start(&pq, &conn, WorkerOptions::default(), |job: bullmq_wire::Job| async move {
            let counts = job.get_dependencies_count().await?;
            let mut deps = job.get_dependencies().await?;
            deps.unprocessed.sort();
            deps.failed.sort();
            Ok(json!({
                "dependencies": {"processed": deps.processed, "unprocessed": deps.unprocessed,
                    "ignored": deps.ignored, "failed": deps.failed},
                "childrenValues": job.get_children_values().await?,
                "ignoredFailures": job.get_ignored_children_failures().await?,
                "dependenciesCount": {"processed": counts.processed, "unprocessed": counts.unprocessed,
                    "ignored": counts.ignored, "failed": counts.failed},
            }))
        })
        .await
        .unwrap();
        let queue = bullmq_wire::Queue::new(&pq, &conn).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut done = false;
        while !done && tokio::time::Instant::now() < deadline {
            let state = queue.get_job_state(&parent_id).await.unwrap();
            done = matches!(
                state,
                bullmq_wire::JobState::Completed | bullmq_wire::JobState::Failed
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        children.close().await;
        parent.close().await;
        let node = run(
            Lang::Node,
            "parent",
            cfg(&server, &pq, json!({"id": parent_id})),
        )
        .await;
        assert_eq!(node["state"], "completed", "{case}: {node:#}");
        let ours = &node["job"]["returnvalue"];
        for field in [
            "childrenValues",
            "ignoredFailures",
            "dependenciesCount",
            "dependencies",
        ] {
            assert_eq!(
                ours[field], node[field],
                "{case}: {field}: ours {ours:#}, node {node:#}"
            );
        }
        assert!(done, "{case}: the parent finished");
    }
}

/// A Rust handler that adds children to its own job, waits for them and
/// then returns their values; the children run on a Node worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_handler_adds_children_and_waits_for_them() {
    let server = RedisServer::start();
    let (pq, cq) = (queue_name(), queue_name());
    let conn = Connection::open(&server.url()).await.unwrap();
    let parents = bullmq_wire::Queue::new(&pq, &conn).await.unwrap();
    let mut events = Process::start(Lang::Node, "events", cfg(&server, &pq, json!({}))).await;
    let child_queue = cq.clone();
    let child_conn = conn.clone();
    let worker = Worker::start(
        &pq,
        &conn,
        WorkerOptions::default(),
        move |mut job: bullmq_wire::Job| {
            let (cq, conn) = (child_queue.clone(), child_conn.clone());
            async move {
                if job.data["step"] == "start" {
                    let children = bullmq_wire::Queue::new(&cq, &conn).await?;
                    for n in [1, 2] {
                        let opts = bullmq_wire::JobOptions {
                            parent: Some(bullmq_wire::ParentRef::of(&job)),
                            ..Default::default()
                        };
                        children.add("echo", &json!({"n": n}), opts).await?;
                    }
                    job.update_data(json!({"step": "collect"})).await?;
                    if job.move_to_waiting_children(None).await? {
                        return Err(bullmq_wire::JobError::waiting_children());
                    }
                }
                let mut values: Vec<Value> =
                    job.get_children_values().await?.into_values().collect();
                values.sort_by_key(|v| v.to_string());
                Ok(json!({"children": values}))
            }
        },
    )
    .await
    .unwrap();
    let id = parents
        .add("fanout", &json!({"step": "start"}), Default::default())
        .await
        .unwrap();
    // the children's worker starts once the parent waits for them (children
    // done before that leave nothing to wait for, and the parent goes on)
    let wanted = id.clone();
    events
        .wait_for(Duration::from_secs(30), move |v| {
            v["event"] == "waiting-children" && v["args"]["jobId"] == wanted.as_str()
        })
        .await;
    let node_children = Process::start(
        Lang::Node,
        "worker",
        cfg(&server, &cq, json!({"concurrency": 2})),
    )
    .await;
    let wanted = id.clone();
    events
        .wait_for(Duration::from_secs(30), move |v| {
            v["event"] == "completed" && v["args"]["jobId"] == wanted.as_str()
        })
        .await;
    worker.close().await;
    node_children.stop().await;
    let seen = events.stop().await;
    let node = run(Lang::Node, "parent", cfg(&server, &pq, json!({"id": id}))).await;
    assert_eq!(node["state"], "completed", "{node:#}");
    assert_eq!(
        node["job"]["returnvalue"],
        json!({"children": [{"echo": {"n": 1}}, {"echo": {"n": 2}}]}),
        "{node:#}"
    );
    assert_eq!(node["dependenciesCount"]["processed"], 2, "{node:#}");
    assert_eq!(
        node["job"]["attemptsMade"], 1,
        "one attempt: waiting for children is not a failure: {node:#}"
    );
    // the parent's life as a Node QueueEvents saw it
    let life: Vec<String> = seen
        .iter()
        .filter(|e| e["args"]["jobId"] == id.as_str() && e["event"] != "added")
        .map(|e| {
            format!(
                "{} {}",
                e["event"].as_str().unwrap(),
                e["args"]["prev"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        life,
        [
            "waiting ",
            "active waiting",
            "waiting-children active",
            "waiting waiting-children",
            "active waiting",
            "completed active"
        ],
        "{seen:?}"
    );
    // a child of a job that does not exist is refused
    let orphan = bullmq_wire::JobOptions {
        parent: Some(bullmq_wire::ParentRef {
            id: "nope".into(),
            queue: format!("bull:{pq}"),
        }),
        ..Default::default()
    };
    let err = bullmq_wire::Queue::new(&cq, &conn)
        .await
        .unwrap()
        .add("echo", &json!({}), orphan)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            bullmq_wire::Error::Script {
                code: bullmq_wire::ScriptCode::ParentJobNotExist,
                ..
            }
        ),
        "{err}"
    );
}

/// A parent with more children than one scan reply holds (a hash over
/// `hash-max-listpack-entries`, set low here, and a set of text are scanned
/// a page at a time; smaller ones come back whole): paging through each
/// kind with `get_dependencies_page` gives every child of `get_dependencies`,
/// and the first page of each kind equals Node's `getDependencies` with the
/// same cursor and count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_read_page_by_page_as_node_reads_them() {
    use bullmq_wire::{DependencyPages, PageRequest};
    use std::collections::{BTreeMap, BTreeSet};
    let server = RedisServer::start();
    let (pq, cq) = (queue_name(), queue_name());
    // 300 children: the odd ones delayed by an hour (unprocessed), every
    // 30th failing with ignoreDependencyOnFailure (ignored), six failing
    // with failParentOnFailure (failed), the rest completing (processed)
    let children: Vec<Value> = (0..300)
        .map(|i| match i {
            i if i % 2 == 1 => json!({"name": "echo", "queueName": cq, "data": {"i": i}, "opts": {"delay": 3_600_000}}),
            i if i % 30 == 0 => json!({"name": "unrecoverable", "queueName": cq, "data": {"i": i}, "opts": {"ignoreDependencyOnFailure": true}}),
            i if i % 50 == 2 => json!({"name": "unrecoverable", "queueName": cq, "data": {"i": i}, "opts": {"failParentOnFailure": true}}),
            i => json!({"name": "echo", "queueName": cq, "data": {"i": i}}),
        })
        .collect();
    let tree = json!({"name": "echo", "queueName": pq, "data": {}, "children": children});
    let conn = Connection::open(&server.url()).await.unwrap();
    let mut admin = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("hash-max-listpack-entries")
        .arg(8)
        .query_async(&mut admin)
        .await
        .unwrap();
    let parent_id = bullmq_wire::FlowProducer::new(&conn)
        .add(flow_job(&tree))
        .await
        .unwrap()
        .id;
    let worker = Worker::start(
        &cq,
        &conn,
        WorkerOptions {
            concurrency: 10,
            ..Default::default()
        },
        behave,
    )
    .await
    .unwrap();
    let child_queue = bullmq_wire::Queue::new(&cq, &conn).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let counts = child_queue
            .get_job_counts(&[
                bullmq_wire::JobState::Completed,
                bullmq_wire::JobState::Failed,
            ])
            .await
            .unwrap();
        let finished: u64 = counts.values().sum();
        if finished == 150 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the 150 due children did not finish: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.close().await;
    let parents = bullmq_wire::Queue::new(&pq, &conn).await.unwrap();
    let parent = parents
        .get_job(&parent_id)
        .await
        .unwrap()
        .expect("the parent exists");
    let all = parent.get_dependencies().await.unwrap();
    assert_eq!(
        (
            all.processed.len(),
            all.unprocessed.len(),
            all.ignored.len(),
            all.failed.len()
        ),
        (134, 150, 10, 6)
    );

    // the first pages, against Node's
    let first = DependencyPages::default()
        .processed(PageRequest::at(0, 50))
        .unprocessed(PageRequest::at(0, 50))
        .ignored(PageRequest::at(0, 5))
        .failed(PageRequest::at(0, 4));
    let ours = parent.get_dependencies_page(first).await.unwrap();
    let pages = json!({"processed": {"count": 50}, "unprocessed": {"count": 50}, "ignored": {"count": 5}, "failed": {"count": 4}});
    let node = run(
        Lang::Node,
        "parent",
        cfg(&server, &pq, json!({"id": parent_id, "pages": pages})),
    )
    .await;
    let node = &node["pages"];
    let (processed, unprocessed) = (ours.processed.unwrap(), ours.unprocessed.unwrap());
    let (ignored, failed) = (ours.ignored.unwrap(), ours.failed.unwrap());
    assert!(
        processed.next_cursor != 0 && unprocessed.next_cursor != 0 && ignored.next_cursor != 0,
        "more than one page: {node}"
    );
    assert_eq!(json!(processed.items), node["processed"]);
    assert_eq!(json!(processed.next_cursor), node["nextProcessedCursor"]);
    let sorted = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        unprocessed.items.iter().cloned().collect::<BTreeSet<_>>(),
        sorted(&node["unprocessed"])
    );
    assert_eq!(
        json!(unprocessed.next_cursor),
        node["nextUnprocessedCursor"]
    );
    assert_eq!(json!(ignored.items), node["ignored"]);
    assert_eq!(json!(ignored.next_cursor), node["nextIgnoredCursor"]);
    assert_eq!(json!(failed.items), node["failed"]);
    assert_eq!(json!(failed.next_cursor), node["nextFailedCursor"]);

    // every page of each kind: each child at least once, nothing else
    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for kind in ["processed", "unprocessed", "ignored", "failed"] {
        let mut cursor = 0;
        let mut pages_read = 0;
        loop {
            let page = PageRequest::at(cursor, 7);
            let req = match kind {
                "processed" => DependencyPages::default().processed(page),
                "unprocessed" => DependencyPages::default().unprocessed(page),
                "ignored" => DependencyPages::default().ignored(page),
                _ => DependencyPages::default().failed(page),
            };
            let got = parent.get_dependencies_page(req).await.unwrap();
            let (keys, next): (Vec<String>, u64) = match kind {
                "processed" => got
                    .processed
                    .map(|p| (p.items.into_keys().collect(), p.next_cursor))
                    .unwrap(),
                "unprocessed" => got.unprocessed.map(|p| (p.items, p.next_cursor)).unwrap(),
                "ignored" => got
                    .ignored
                    .map(|p| (p.items.into_keys().collect(), p.next_cursor))
                    .unwrap(),
                _ => got.failed.map(|p| (p.items, p.next_cursor)).unwrap(),
            };
            seen.entry(kind).or_default().extend(keys);
            pages_read += 1;
            assert!(pages_read < 200, "{kind}: the cursor never came back to 0");
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    assert_eq!(seen["processed"], all.processed.keys().cloned().collect());
    assert_eq!(
        seen["unprocessed"],
        all.unprocessed.iter().cloned().collect()
    );
    assert_eq!(seen["ignored"], all.ignored.keys().cloned().collect());
    assert_eq!(seen["failed"], all.failed.iter().cloned().collect());
    // a page of nothing is refused, not sent
    let empty = DependencyPages::default().processed(PageRequest::at(0, 0));
    assert!(matches!(
        parent.get_dependencies_page(empty).await,
        Err(bullmq_wire::Error::InvalidInput { .. })
    ));
}

/// Flows whose children already exist, as BullMQ 6.7.0 handles them: a
/// completed child counts at once as processed (a parent whose children
/// all had completed is released when the flow is in), a pending one joins
/// the parent's dependencies, and one that another live parent holds is
/// left alone (and its new parent keeps waiting). Node's FlowProducer and
/// ours, each after the same preparation, leave the same keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_children_are_attached_as_node_attaches_them() {
    let server = RedisServer::start();
    let mut states = Vec::new();
    for producer in [Lang::Node, Lang::Rust] {
        let (p, c) = (queue_name(), queue_name());
        // done1 and done2 complete; pending1 waits an hour; held1 is the
        // (delayed) child of a flow parent `other`
        let jobs = json!([
            {"name": "echo", "data": {"d": 1}, "opts": {"jobId": "done1"}},
            {"name": "echo", "data": {"d": 2}, "opts": {"jobId": "done2"}},
            {"name": "echo", "data": {"d": 3}, "opts": {"jobId": "pending1", "delay": 3_600_000}},
        ]);
        run(Lang::Node, "add", cfg(&server, &c, json!({"jobs": jobs}))).await;
        let other = json!({"name": "echo", "queueName": p, "data": {}, "opts": {"jobId": "other"}, "children": [
            {"name": "echo", "queueName": c, "data": {"h": 1}, "opts": {"jobId": "held1", "delay": 3_600_000}}]});
        run(Lang::Node, "flow", cfg(&server, &p, json!({"flow": other}))).await;
        let conn = Connection::open(&server.url()).await.unwrap();
        let worker = Worker::start(&c, &conn, WorkerOptions::default(), behave)
            .await
            .unwrap();
        let queue = bullmq_wire::Queue::new(&c, &conn).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while queue
            .get_job_counts(&[bullmq_wire::JobState::Completed])
            .await
            .unwrap()
            .values()
            .sum::<u64>()
            < 2
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "done1 and done2 did not complete"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        worker.close().await;

        let child = |id: &str| json!({"name": "echo", "queueName": c, "data": {"again": id}, "opts": {"jobId": id}});
        let all_done = json!({"name": "echo", "queueName": p, "data": {}, "opts": {"jobId": "PA"}, "children": [child("done1"), child("done2")]});
        let mixed = json!({"name": "echo", "queueName": p, "data": {}, "opts": {"jobId": "PB"}, "children": [child("pending1"), child("held1")]});
        for flow in [all_done, mixed] {
            match producer {
                Lang::Node => {
                    run(Lang::Node, "flow", cfg(&server, &p, json!({"flow": flow}))).await;
                }
                _ => {
                    bullmq_wire::FlowProducer::new(&conn)
                        .add(flow_job(&flow))
                        .await
                        .unwrap();
                }
            }
        }
        let mut state = flow_state(&server, &p, &c).await;
        // what differs between two runs: the worker's clock, and whether the
        // worker had popped the children's delay marker when it closed (the
        // flows under test add no child, so they do not touch that marker)
        state.as_object_mut().unwrap().remove("C:stalled-check");
        state.as_object_mut().unwrap().remove("C:marker");
        for (key, value) in state.as_object_mut().unwrap() {
            if let Some(h) = value.as_object_mut() {
                for f in ["processedOn", "finishedOn"] {
                    h.remove(f);
                }
            }
            if key.ends_with(":completed") {
                *value = json!(value
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m[0].clone())
                    .collect::<Vec<_>>());
            }
        }
        states.push(state);
    }
    let (node, rust) = (&states[0], &states[1]);
    interop_tests::assert_same_json("state after flows over existing children", node, rust);
    // and what BullMQ's rules say it is
    assert_eq!(
        rust["P:wait"],
        json!(["PA"]),
        "PA's children had all completed: {rust:#}"
    );
    assert_eq!(
        rust["P:PA:processed"].as_object().map(|m| m.len()),
        Some(2),
        "{rust:#}"
    );
    assert_eq!(
        rust["P:waiting-children"],
        json!(["PB", "other"]),
        "{rust:#}"
    );
    assert_eq!(
        rust["P:PB:dependencies"],
        json!(["bull:<C>:pending1"]),
        "{rust:#}"
    );
    assert_eq!(rust["C:pending1"]["parentKey"], "bull:<P>:PB");
    assert_eq!(rust["C:held1"]["parentKey"], "bull:<P>:other");
    assert!(
        rust["P:PB"].get("flowAttachmentFailed").is_none(),
        "the mark is cleared: {rust:#}"
    );
}

/// An add with a parent whose job id exists and is held by another parent
/// is refused with BullMQ's -7 and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_cannot_take_a_child_from_another_parent() {
    let server = RedisServer::start();
    let (p, c) = (queue_name(), queue_name());
    let other = json!({"name": "echo", "queueName": p, "data": {}, "opts": {"jobId": "other"}, "children": [
        {"name": "echo", "queueName": c, "data": {}, "opts": {"jobId": "held1", "delay": 3_600_000}}]});
    run(Lang::Node, "flow", cfg(&server, &p, json!({"flow": other}))).await;
    run(
        Lang::Node,
        "add",
        cfg(
            &server,
            &p,
            json!({"jobs": [{"name": "echo", "opts": {"jobId": "mine"}}]}),
        ),
    )
    .await;
    let conn = Connection::open(&server.url()).await.unwrap();
    let parents = bullmq_wire::Queue::new(&p, &conn).await.unwrap();
    let mine = parents.get_job("mine").await.unwrap().unwrap();
    let children = bullmq_wire::Queue::new(&c, &conn).await.unwrap();
    // (the id counter moves on every add, custom id or not, as BullMQ's does)
    let state = || async {
        let mut s = flow_state(&server, &p, &c).await;
        s.as_object_mut().unwrap().remove("C:id");
        s
    };
    let before = state().await;
    let opts = bullmq_wire::JobOptions {
        job_id: Some("held1".into()),
        parent: Some(bullmq_wire::ParentRef::of(&mine)),
        ..Default::default()
    };
    let err = children.add("echo", &json!({}), opts).await.unwrap_err();
    assert!(
        matches!(
            err,
            bullmq_wire::Error::Script {
                code: bullmq_wire::ScriptCode::ParentJobCannotBeReplaced,
                ..
            }
        ),
        "{err:?}"
    );
    interop_tests::assert_same_json("nothing changed", &before, &state().await);
    assert_eq!(before["C:held1"]["parentKey"], "bull:<P>:other");
}
