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

/// Sweeps at start, then whenever the fleet's `stalled-check` key expires
/// (at most `interval` apart): a worker started after another's sweep does
/// not wait a whole interval of its own, so a killed worker's job is back in
/// `wait` about lock duration + interval after the kill.
pub(crate) async fn check_loop(queue: Queue, max_stalled: u32, interval: Duration) {
    loop {
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
        tokio::time::sleep(until_next_sweep(&queue, interval).await).await;
    }
}

/// Time left on the `stalled-check` key (set by whichever worker swept
/// last), within 10 ms..=`interval`.
async fn until_next_sweep(queue: &Queue, interval: Duration) -> Duration {
    let pttl: redis::RedisResult<i64> = redis::cmd("PTTL")
        .arg(queue.keys().stalled_check())
        .query_async(&mut queue.con())
        .await;
    let floor = Duration::from_millis(10).min(interval);
    match pttl {
        Ok(ms) if ms > 0 => Duration::from_millis(ms as u64 + 1).clamp(floor, interval),
        Ok(_) => floor,
        Err(_) => interval,
    }
}
