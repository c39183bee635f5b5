//! A timeout on one shared, coarse clock, for waits that almost always end
//! long before their limit.
//!
//! Every call watches its job and waits for Redis to confirm the
//! subscription, with a limit of seconds that is reached only in an outage.
//! `tokio::time::timeout` registers a timer per wait, and when that timer is
//! the runtime's earliest deadline the registration wakes the timer driver
//! (an eventfd write: 0.8 syscalls per call at 50 x 4, measured with
//! `perf record -e raw_syscalls:sys_enter`). Here one task ticks for all
//! waits and a wait only counts ticks: nothing is registered per wait but a
//! waiter on a [`Notify`], and a wait ends between its limit and its limit
//! plus two periods.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;

/// A wait ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// A handle on the shared clock; clones share it. Its ticking task stops at
/// the first tick after the last handle is dropped.
#[derive(Clone)]
pub(crate) struct CoarseTimeout {
    clock: Arc<Clock>,
}

struct Clock {
    period: Duration,
    ticks: AtomicU64,
    tick: Notify,
}

impl CoarseTimeout {
    /// Starts the clock, ticking every `period` (needs a tokio runtime).
    pub(crate) fn start(period: Duration) -> Self {
        let period = period.max(Duration::from_millis(1));
        let clock = Arc::new(Clock {
            period,
            ticks: AtomicU64::new(0),
            tick: Notify::new(),
        });
        tokio::spawn(tick(Arc::downgrade(&clock), period));
        CoarseTimeout { clock }
    }

    /// Runs `fut` for at least `limit` (at most `limit` plus two periods).
    pub(crate) async fn run<F: Future>(
        &self,
        limit: Duration,
        fut: F,
    ) -> Result<F::Output, Elapsed> {
        let period = self.clock.period.as_nanos();
        let whole = u64::try_from(limit.as_nanos().div_ceil(period)).unwrap_or(u64::MAX);
        // The first tick may come at once: count one more than the limit.
        let end = self
            .clock
            .ticks
            .load(Ordering::Acquire)
            .saturating_add(whole)
            .saturating_add(1);
        tokio::pin!(fut);
        loop {
            let ticked = self.clock.tick.notified();
            tokio::pin!(ticked);
            // Registered before the count is read, so no tick is missed.
            ticked.as_mut().enable();
            if self.clock.ticks.load(Ordering::Acquire) >= end {
                return Err(Elapsed);
            }
            tokio::select! {
                biased;
                out = &mut fut => return Ok(out),
                () = &mut ticked => {}
            }
        }
    }
}

async fn tick(clock: Weak<Clock>, period: Duration) {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(clock) = clock.upgrade() else {
            return;
        };
        clock.ticks.fetch_add(1, Ordering::AcqRel);
        clock.tick.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn a_wait_that_never_ends_times_out_no_sooner_than_its_limit() {
        let timeouts = CoarseTimeout::start(Duration::from_millis(20));
        let limit = Duration::from_millis(100);
        let began = Instant::now();
        let wait = timeouts.run(limit, std::future::pending::<()>());
        let out = tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("the coarse timeout never fired");
        let took = began.elapsed();
        assert_eq!(out, Err(Elapsed));
        assert!(took >= limit, "timed out after {took:?}, before {limit:?}");
    }

    #[tokio::test]
    async fn a_wait_that_ends_returns_its_output() {
        let timeouts = CoarseTimeout::start(Duration::from_millis(20));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let waiter = tokio::spawn({
            let timeouts = timeouts.clone();
            async move { timeouts.run(Duration::from_secs(60), rx).await }
        });
        // Let several ticks pass while the wait is pending.
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send(7).unwrap();
        assert_eq!(waiter.await.unwrap(), Ok(Ok(7)));
    }
}
