//! What the outage tests share: a handler that reports progress and logs
//! step by step, and waiting on jobs with a deadline.

use std::time::Duration;

use bullmq_wire::{Job, Queue};
use serde_json::json;
use tokio::time::Instant;
use worker_runtime::{Call, Registry};

/// A registry serving `steps.run`: progress `i` and log line `step i`
/// every 100 ms for `i` in 1..=`steps`, then `"done"`.
pub fn stepping_registry(steps: u64) -> Registry {
    let mut r = Registry::new();
    r.handle("steps.run", move |mut call: Call| async move {
        for i in 1..=steps {
            tokio::time::sleep(Duration::from_millis(100)).await;
            call.progress(json!(i)).await?;
            call.log(&format!("step {i}")).await?;
        }
        Ok(json!("done"))
    })
    .expect("register steps.run");
    r
}

/// Waits until `ok` holds for every job in `ids`; panics after `wait`
/// with the job's state.
pub async fn wait_all(
    queue: &Queue,
    ids: &[String],
    wait: Duration,
    what: &str,
    ok: impl Fn(&Job) -> bool,
) {
    let deadline = Instant::now() + wait;
    for id in ids {
        loop {
            if let Ok(Some(job)) = queue.get_job(id).await {
                if ok(&job) {
                    break;
                }
            }
            if Instant::now() >= deadline {
                let state = queue.get_job_state(id).await;
                let job = queue.get_job(id).await;
                panic!("job {id}: {what} never happened; state {state:?}, job {job:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
