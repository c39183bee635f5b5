//! Failover under load: producers add jobs with their own ids while a
//! worker serves them; a fault runs in the middle; afterwards every add that
//! was acknowledged is looked up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bullmq_wire::{Connection, JobOptions, JobState, Queue, Worker, WorkerOptions};
use serde_json::json;

/// What a run saw.
#[derive(Debug)]
pub struct Outcome {
    /// Ids whose add was acknowledged.
    pub acked: Vec<String>,
    /// Acknowledged ids that never completed (missing or stuck).
    pub lost: Vec<String>,
    /// Acknowledged adds made after the fault, all completed.
    pub acked_after: usize,
    /// How often the handler ran per id.
    pub runs: HashMap<String, usize>,
    /// Add calls that failed and were retried with the same id.
    pub add_errors: usize,
}

/// Adds jobs from 4 producers while a worker (concurrency 8) serves them;
/// after `before` acknowledged adds runs `fault` (blocking: kill a master
/// and wait for the failover), then adds until `after` more are
/// acknowledged. Waits up to 60 s for every acknowledged job to complete.
pub async fn failover_under_load(
    conn: &Connection,
    queue_name: &str,
    before: usize,
    after: usize,
    fault: impl FnOnce() + Send + 'static,
) -> Outcome {
    let queue = Queue::new(queue_name, conn).await.expect("queue");
    let runs: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let seen = runs.clone();
    let opts = WorkerOptions {
        concurrency: 8,
        name: Some("failover-worker".into()),
        lock_duration: Duration::from_secs(4),
        stalled_interval: Duration::from_secs(2),
        max_stalled_count: 5,
        ..Default::default()
    };
    let worker = Worker::start(queue_name, conn, opts, move |job| {
        let seen = seen.clone();
        async move {
            *seen.lock().unwrap().entry(job.id.clone()).or_default() += 1;
            Ok(json!({"ok": job.id}))
        }
    })
    .await
    .expect("worker");

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let errors: Arc<Mutex<usize>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for p in 0..4 {
        let (queue, acked, errors, stop) =
            (queue.clone(), acked.clone(), errors.clone(), stop.clone());
        producers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let id = format!("p{p}-{n}");
                n += 1;
                let opts = JobOptions {
                    job_id: Some(id.clone()),
                    ..Default::default()
                };
                // Retry the same id until it is acknowledged: what a careful
                // producer does, and safe because the id is the job's.
                loop {
                    match queue.add("load", &json!({"n": n}), opts.clone()).await {
                        Ok(_) => {
                            acked.lock().unwrap().push(id.clone());
                            break;
                        }
                        Err(_) if stop.load(Ordering::SeqCst) => return,
                        Err(_) => {
                            *errors.lock().unwrap() += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        }));
    }
    let count = |acked: &Arc<Mutex<Vec<String>>>| acked.lock().unwrap().len();
    wait(30, "acknowledged adds before the fault", || {
        count(&acked) >= before
    })
    .await;
    tokio::task::spawn_blocking(fault).await.expect("fault ran");
    let at_fault = count(&acked);
    wait(60, "acknowledged adds after the fault", || {
        count(&acked) >= at_fault + after
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for p in producers {
        let _ = tokio::time::timeout(Duration::from_secs(30), p).await;
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    let after_ids: Vec<String> = acked[at_fault..].to_vec();

    // Wait for the acknowledged jobs to complete; the ones that never do
    // within the deadline are lost.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut pending: Vec<String> = acked.clone();
    while !pending.is_empty() && tokio::time::Instant::now() < deadline {
        let mut still = Vec::new();
        for id in pending {
            match queue.get_job_state(&id).await {
                Ok(JobState::Completed) => {}
                _ => still.push(id),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let lost = pending;
    let lost_after = after_ids.iter().filter(|id| lost.contains(id)).count();
    assert_eq!(
        lost_after, 0,
        "every job added after the failover completes: the worker keeps serving"
    );
    worker.close().await;
    let runs = runs.lock().unwrap().clone();
    let add_errors = *errors.lock().unwrap();
    Outcome {
        acked,
        lost,
        acked_after: after_ids.len(),
        runs,
        add_errors,
    }
}

impl Outcome {
    /// Ids whose handler ran more than once (a completion that the failover
    /// lost is processed again once its lock expires).
    pub fn repeated(&self) -> usize {
        self.runs.values().filter(|&&n| n > 1).count()
    }

    pub fn report(&self, what: &str) {
        println!(
            "{what}: {} adds acknowledged ({} after the failover), {} lost, {} processed twice, {} add errors retried",
            self.acked.len(),
            self.acked_after,
            self.lost.len(),
            self.repeated(),
            self.add_errors
        );
    }
}

pub async fn wait(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The job's state once it is completed or failed, or what it is after 20 s.
pub async fn final_state(queue: &Queue, id: &str) -> JobState {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let state = queue.get_job_state(id).await.expect("job state");
        if matches!(state, JobState::Completed | JobState::Failed)
            || tokio::time::Instant::now() >= deadline
        {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
