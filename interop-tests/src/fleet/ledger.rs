//! The ledger of a run: what clients saw (acknowledged, delivered, lost,
//! errors by code) and, from Redis afterwards, which jobs finished more
//! than once (duplicated) and which were run again after their worker lost
//! its lock (re-run: BullMQ's at-least-once execution, finished once).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::FleetError;

/// Live counts, shared by every client of a run (tests wait on them).
#[derive(Debug, Default)]
pub struct Counters {
    /// Calls the gateway accepted (`rpc.accepted`, or a result).
    pub acknowledged: AtomicU64,
    /// Acknowledged calls whose result reached the client.
    pub delivered: AtomicU64,
    /// Error responses that say "retry" (-32004 and friends).
    pub retryable_errors: AtomicU64,
}

impl Counters {
    /// Waits (polling every 50 ms) until `delivered >= n`; false on timeout.
    pub async fn wait_delivered(&self, n: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.delivered.load(Ordering::Relaxed) < n {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    /// Waits until at least one more retryable error than `seen` arrived.
    pub async fn wait_retryable(&self, seen: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.retryable_errors.load(Ordering::Relaxed) <= seen {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }
}

/// One client's (or a whole run's, after [`Ledger::merge`]) account.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Calls the gateway accepted.
    pub acknowledged: u64,
    /// Acknowledged calls whose result arrived (each counted once).
    pub delivered: u64,
    /// Acknowledged calls with no result by the end, or whose job was gone
    /// when the client re-attached (-32003).
    pub lost: u64,
    /// Jobs that finished more than once (see [`Ledger::audit`]).
    pub duplicated: u64,
    /// Jobs whose handler ran to its end more than once but that finished
    /// once: a worker lost the job's lock (it could not reach Redis for
    /// longer than the lock), the stalled check handed the job to another
    /// worker, and the first run's finish was refused.
    pub reran: u64,
    /// Acknowledged calls that ended in a job failure (-32010).
    pub failed: u64,
    /// Results that carried something other than what the call asked for.
    pub wrong_results: u64,
    /// Calls never acknowledged by the end (still being retried).
    pub unacknowledged: u64,
    /// Results for a call that had its result already (after re-attaching
    /// on the same socket); the client ignores them.
    pub repeats: u64,
    /// New sockets after a lost one.
    pub reconnects: u64,
    /// `rpc.subscribe` sent because a socket stayed silent too long.
    pub stale_resubscribes: u64,
    /// Error responses by code.
    pub errors: BTreeMap<i64, u64>,
    /// The gateway's job ids of acknowledged calls (for the audit).
    pub job_ids: Vec<String>,
}

impl Ledger {
    /// Adds another client's ledger to this one.
    pub fn merge(&mut self, other: Ledger) {
        self.acknowledged += other.acknowledged;
        self.delivered += other.delivered;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.reran += other.reran;
        self.failed += other.failed;
        self.wrong_results += other.wrong_results;
        self.unacknowledged += other.unacknowledged;
        self.repeats += other.repeats;
        self.reconnects += other.reconnects;
        self.stale_resubscribes += other.stale_resubscribes;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        self.job_ids.extend(other.job_ids);
    }

    /// Reads every acknowledged job from Redis and counts as duplicated
    /// each one whose `attemptsMade` is above one (every accepted finish
    /// adds one; the fleet's calls never fail on purpose), and as re-run
    /// each other one whose Node handler recorded more than one completed
    /// run (`fleet:runs:<id>`).
    pub async fn audit(&mut self, redis_url: &str) -> Result<(), FleetError> {
        let client = redis::Client::open(redis_url).map_err(FleetError::redis)?;
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .map_err(FleetError::redis)?;
        let mut duplicated = 0;
        let mut reran = 0;
        for chunk in self.job_ids.chunks(500) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.hget(format!("bull:demo:{id}"), "attemptsMade")
                    .get(format!("fleet:runs:{id}"));
            }
            let replies: Vec<Option<u64>> = pipe
                .query_async(&mut con)
                .await
                .map_err(FleetError::redis)?;
            for r in replies.chunks(2) {
                let (attempts, runs) =
                    (r[0].unwrap_or(0), r.get(1).copied().flatten().unwrap_or(0));
                if attempts > 1 {
                    duplicated += 1;
                } else if runs > 1 {
                    reran += 1;
                }
            }
        }
        self.duplicated = duplicated;
        self.reran = reran;
        Ok(())
    }
}

impl fmt::Display for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "acknowledged={} delivered={} lost={} duplicated={} reran={} failed={} wrong={} \
             unacknowledged={} repeats={} reconnects={} stale_resubscribes={} errors={:?}",
            self.acknowledged,
            self.delivered,
            self.lost,
            self.duplicated,
            self.reran,
            self.failed,
            self.wrong_results,
            self.unacknowledged,
            self.repeats,
            self.reconnects,
            self.stale_resubscribes,
            self.errors
        )
    }
}
