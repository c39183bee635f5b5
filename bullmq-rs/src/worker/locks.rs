//! Lock renewal: one `extendLocks` call per interval for every job the
//! worker holds, instead of a timer per job.

use std::time::Duration;

use super::Held;
use crate::queue::Queue;
use crate::script;

/// Runs until the worker loop aborts it, after the last job is settled.
pub(crate) async fn renew_loop(queue: Queue, held: Held, lock_duration: Duration, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let jobs: Vec<(String, String)> = match held.lock() {
            Ok(h) => h
                .iter()
                .map(|(id, token)| (id.clone(), token.clone()))
                .collect(),
            Err(_) => return,
        };
        if jobs.is_empty() {
            continue;
        }
        let k = queue.keys();
        let mut call = script::EXTEND_LOCKS
            .call()
            .key(k.stalled())
            .arg(k.base())
            .arg(lock_duration.as_millis() as u64);
        for (id, token) in &jobs {
            call.push_arg(id);
            call.push_arg(token);
        }
        match call.invoke::<Vec<String>, _>(&mut queue.con()).await {
            Ok(lost) => {
                for id in lost {
                    tracing::warn!(queue = queue.name(), job_id = %id, "lock renewal failed: the job's lock expired or was taken; it may run twice");
                }
            }
            Err(e) => {
                tracing::warn!(queue = queue.name(), error = %e, "lock renewal failed; will retry")
            }
        }
    }
}
