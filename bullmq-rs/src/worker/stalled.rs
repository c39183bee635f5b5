//! The stalled-job sweep, run at start and every `stalled_interval`; Redis
//! makes sure only one worker of the fleet runs it per interval.

use std::time::Duration;

use crate::queue::Queue;
use crate::script;
use crate::time::now_ms;

/// Runs one sweep; returns the ids found stalled.
pub(crate) async fn check_once(
    queue: &Queue,
    max_stalled: u32,
    interval: Duration,
) -> crate::Result<Vec<String>> {
    let k = queue.keys();
    script::MOVE_STALLED_JOBS_TO_WAIT
        .call()
        .keys(k.core())
        .key(k.stalled_check())
        .key(k.repeat())
        .arg(max_stalled)
        .arg(k.base())
        .arg(now_ms())
        .arg(interval.as_millis() as u64)
        .invoke(&mut queue.con())
        .await
}

pub(crate) async fn check_loop(queue: Queue, max_stalled: u32, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match check_once(&queue, max_stalled, interval).await {
            Ok(ids) => {
                for id in ids {
                    tracing::warn!(queue = queue.name(), job_id = %id, "job stalled: its worker stopped renewing the lock; moved back to wait");
                }
            }
            Err(e) => {
                tracing::warn!(queue = queue.name(), error = %e, "stalled-job check failed; will retry")
            }
        }
    }
}
