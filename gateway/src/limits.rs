//! Token buckets for the per-user and per-IP rate limits, and the
//! connection count. A session takes one token from its user's bucket and
//! one from its IP's bucket per request (each element of a batch counts).
//! Also the per-socket count of frames that carried no request.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Rate;

/// One token bucket, shared by every socket of the same user (or IP).
#[derive(Debug)]
pub struct Bucket {
    rate: Rate,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: Rate, now: Instant) -> Self {
        Bucket {
            rate,
            state: Mutex::new((rate.burst, now)),
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn try_take(&self, now: Instant) -> Result<(), Duration> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(s.1).as_secs_f64();
        s.0 = (s.0 + elapsed * self.rate.per_second).min(self.rate.burst);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - s.0) / self.rate.per_second))
        }
    }
}

/// Buckets by key (user or IP). Sockets hold their bucket; the sweep drops
/// buckets no socket holds any more.
#[derive(Debug)]
pub struct Limiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Arc<Bucket>>>,
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    /// A limiter; a rate of 0 disables it.
    pub fn new(rate: Rate) -> Self {
        Limiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The bucket of `key`, or `None` when the limit is off.
    pub fn bucket(&self, key: &K) -> Option<Arc<Bucket>> {
        if self.rate.per_second <= 0.0 {
            return None;
        }
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        Some(
            map.entry(key.clone())
                .or_insert_with(|| Arc::new(Bucket::new(self.rate, Instant::now())))
                .clone(),
        )
    }

    /// Drops buckets held by no socket; returns how many remain.
    pub fn sweep(&self) -> usize {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, b| Arc::strong_count(b) > 1);
        map.len()
    }
}

/// Frames that carried no request on one socket, counted in fixed windows
/// (each starts at the first such frame after the previous one ended):
/// `max` of them within one window close the socket, whatever valid frames
/// came between them (so mixing in a call now and then does not reset it).
#[derive(Debug)]
pub struct InvalidFrames {
    max: u32,
    window: Duration,
    count: u32,
    since: Instant,
}

impl InvalidFrames {
    /// A counter closing at `max` within `window`; `max` 0 never closes.
    pub fn new(max: u32, window: Duration, now: Instant) -> Self {
        InvalidFrames {
            max,
            window,
            count: 0,
            since: now,
        }
    }

    /// Counts one more; returns how many the window holds when that
    /// reaches the maximum (the socket must close), else `None`.
    pub fn note(&mut self, now: Instant) -> Option<u32> {
        if self.count == 0 || now.saturating_duration_since(self.since) >= self.window {
            self.count = 0;
            self.since = now;
        }
        self.count = self.count.saturating_add(1);
        (self.max > 0 && self.count >= self.max).then_some(self.count)
    }
}

/// Counts open WebSocket connections against the maximum.
#[derive(Debug)]
pub struct ConnectionSlots {
    max: usize,
    open: AtomicUsize,
    /// Woken when the last slot is freed (shutdown waits on it).
    idle: tokio::sync::Notify,
}

/// Frees its slot when dropped (when the session ends).
#[derive(Debug)]
pub struct Slot(Arc<ConnectionSlots>);

impl ConnectionSlots {
    /// Room for `max` connections.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(ConnectionSlots {
            max,
            open: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        })
    }

    /// A slot, or `None` when all are taken.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Resolves once no connection is open.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_its_rate() {
        let t0 = Instant::now();
        let b = Bucket::new(
            Rate {
                per_second: 10.0,
                burst: 2.0,
            },
            t0,
        );
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0).is_ok());
        let wait = b.try_take(t0).unwrap_err();
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::from_millis(90),
            "{wait:?}"
        );
        assert!(b.try_take(t0 + Duration::from_millis(100)).is_ok());
        assert!(b.try_take(t0 + Duration::from_millis(100)).is_err());
        // Never more than the burst, however long it rested.
        let later = t0 + Duration::from_secs(60);
        assert!(
            b.try_take(later).is_ok() && b.try_take(later).is_ok() && b.try_take(later).is_err()
        );
    }

    #[test]
    fn limiter_shares_buckets_and_sweeps_unused_ones() {
        let l = Limiter::new(Rate {
            per_second: 1.0,
            burst: 1.0,
        });
        let a1 = l.bucket(&"a").unwrap();
        let a2 = l.bucket(&"a").unwrap();
        assert!(Arc::ptr_eq(&a1, &a2));
        drop(l.bucket(&"b"));
        assert_eq!(l.sweep(), 1);
        assert!(Limiter::<&str>::new(Rate {
            per_second: 0.0,
            burst: 1.0
        })
        .bucket(&"a")
        .is_none());
    }

    #[test]
    fn invalid_frames_count_within_their_window_whatever_came_between() {
        let t0 = Instant::now();
        let mut f = InvalidFrames::new(3, Duration::from_secs(10), t0);
        assert_eq!(f.note(t0), None);
        assert_eq!(f.note(t0 + Duration::from_secs(4)), None);
        assert_eq!(f.note(t0 + Duration::from_secs(9)), Some(3));
        // A new window starts empty.
        let t1 = t0 + Duration::from_secs(20);
        assert_eq!(f.note(t1), None);
        assert_eq!(f.note(t1), None);
        assert_eq!(f.note(t1 + Duration::from_secs(10)), None);
        // 0 never closes.
        let mut never = InvalidFrames::new(0, Duration::from_secs(10), t0);
        assert!((0..1000).all(|_| never.note(t0).is_none()));
    }

    #[test]
    fn slots_are_released_on_drop() {
        let s = ConnectionSlots::new(1);
        let slot = s.try_acquire().unwrap();
        assert!(s.try_acquire().is_none());
        drop(slot);
        assert!(s.try_acquire().is_some());
    }
}
