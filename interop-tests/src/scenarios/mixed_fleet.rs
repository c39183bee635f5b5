//! Scenario 2 (run by `tests/mixed_fleet.rs` on one server and by
//! `tests/deployments.rs` on a cluster and a Sentinel set): one queue, a
//! Rust, a Node and a Python worker at once (or the languages given), and
//! producers in all three languages adding 3,000 jobs (plain, delayed,
//! prioritized, some failing once then retried). Every job must complete
//! exactly once: none lost, none run to completion twice.

use std::collections::HashMap;
use std::time::Duration;

use crate::{cfg, connect, job_options, queue_name, run, Deployment, Lang, Process};
use bullmq_wire::{JobState, NewJob, Queue};
use serde_json::{json, Value};

const PER_PRODUCER: usize = 1000;

/// Job `i` of a producer: plain, delayed, prioritized or failing once.
fn job(producer: &str, i: usize) -> Value {
    let data = json!({"producer": producer, "i": i, "times": 1});
    if i.is_multiple_of(13) {
        json!({"name": "fail", "data": data, "opts": {"attempts": 2, "backoff": {"type": "fixed", "delay": 20}}})
    } else if i.is_multiple_of(10) {
        json!({"name": "count", "data": data, "opts": {"delay": 50 + (i % 150)}})
    } else if i.is_multiple_of(7) {
        json!({"name": "count", "data": data, "opts": {"priority": 1 + (i % 5)}})
    } else {
        json!({"name": "count", "data": data})
    }
}

fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "rust",
        Lang::Node => "node",
        Lang::Python => "python",
    }
}

/// A worker per language and a producer per language (ours in process)
/// on one queue: every job completes exactly once.
pub async fn languages_share_one_queue_exactly_once(server: &dyn Deployment, langs: &[Lang]) {
    let q = queue_name();
    let worker_cfg = |name: &str| cfg(server, &q, json!({"concurrency": 10, "name": name}));
    let mut workers = Vec::new();
    for &lang in langs {
        workers.push(Process::start(lang, "worker", worker_cfg(lang_name(lang))).await);
    }

    let conn = connect(server).await;
    let queue = Queue::new(&q, &conn).await.unwrap();
    let adds = langs.iter().map(|&lang| {
        let name = lang_name(lang);
        let jobs: Vec<Value> = (0..PER_PRODUCER).map(|i| job(name, i)).collect();
        let queue = queue.clone();
        let config = cfg(
            server,
            &q,
            json!({"jobs": jobs.clone(), "bulk": lang == Lang::Node}),
        );
        async move {
            match lang {
                Lang::Rust => {
                    let jobs = jobs
                        .iter()
                        .map(|j| {
                            NewJob::new(
                                j["name"].as_str().unwrap(),
                                &j["data"],
                                job_options(j.get("opts").unwrap_or(&json!({}))),
                            )
                        })
                        .collect();
                    queue.add_bulk(jobs).await.unwrap().len()
                }
                other => run(other, "add", config).await["ids"]
                    .as_array()
                    .unwrap()
                    .len(),
            }
        }
    });
    let added: usize = futures::future::join_all(adds).await.into_iter().sum();
    let total = langs.len() * PER_PRODUCER;
    assert_eq!(added, total);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let counts = queue
            .get_job_counts(&[JobState::Completed, JobState::Failed])
            .await
            .unwrap();
        assert_eq!(counts[&JobState::Failed], 0, "a job failed for good");
        if counts[&JobState::Completed] as usize == total {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {total} jobs completed",
            counts[&JobState::Completed]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut completions: HashMap<String, usize> = HashMap::new();
    let mut starts: HashMap<String, usize> = HashMap::new();
    let mut by_worker: HashMap<&str, usize> = HashMap::new();
    for (name, w) in langs.iter().map(|&l| lang_name(l)).zip(workers.drain(..)) {
        for line in w.stop().await {
            let id = line["id"]
                .as_str()
                .map(str::to_string)
                .or_else(|| line["id"].as_i64().map(|n| n.to_string()));
            match (line["event"].as_str(), id) {
                (Some("completed"), Some(id)) => {
                    *completions.entry(id).or_default() += 1;
                    *by_worker.entry(name).or_default() += 1;
                }
                (Some("start"), Some(id)) => *starts.entry(id).or_default() += 1,
                _ => {}
            }
        }
    }
    assert_eq!(
        completions.len(),
        total,
        "jobs completed (by worker: {by_worker:?})"
    );
    let twice: Vec<_> = completions.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "jobs completed more than once: {twice:?}");
    for name in langs.iter().map(|&l| lang_name(l)) {
        assert!(
            by_worker.get(name).copied().unwrap_or(0) > 0,
            "{name} did no work: {by_worker:?}"
        );
    }
    let failing_once = langs.len() * (0..PER_PRODUCER).filter(|i| i.is_multiple_of(13)).count();
    assert_eq!(
        starts.values().filter(|n| **n == 2).count(),
        failing_once,
        "jobs that failed once ran twice"
    );
    assert_eq!(starts.values().sum::<usize>(), total + failing_once);
}
