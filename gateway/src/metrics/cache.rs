//! What a scrape reads from Redis, kept for a short while: concurrent
//! scrapes share one read, and scrapes within the TTL reuse it.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// One cached value and when it was read.
#[derive(Debug, Default)]
pub struct ScrapeCache<T> {
    slot: Mutex<Option<(Instant, T)>>,
}

impl<T: Clone> ScrapeCache<T> {
    /// An empty cache.
    pub fn new() -> Self {
        ScrapeCache {
            slot: Mutex::new(None),
        }
    }

    /// The value read less than `ttl` ago, or a fresh one from `load`.
    /// Callers that arrive while a load runs wait for it and share it.
    pub async fn get<F, Fut>(&self, ttl: Duration, load: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((at, value)) = slot.as_ref() {
            if at.elapsed() < ttl {
                return value.clone();
            }
        }
        let value = load().await;
        *slot = Some((Instant::now(), value.clone()));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn concurrent_and_recent_scrapes_share_one_read() {
        let cache = Arc::new(ScrapeCache::new());
        let reads = Arc::new(AtomicUsize::new(0));
        let ttl = Duration::from_secs(60);
        let scrapes = (0..8).map(|_| {
            let (cache, reads) = (cache.clone(), reads.clone());
            tokio::spawn(async move {
                cache
                    .get(ttl, || async {
                        tokio::task::yield_now().await;
                        reads.fetch_add(1, Ordering::SeqCst)
                    })
                    .await
            })
        });
        for s in futures::future::join_all(scrapes).await {
            assert_eq!(s.unwrap(), 0, "every scrape saw the first read");
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        let fresh = cache
            .get(Duration::ZERO, || async {
                reads.fetch_add(1, Ordering::SeqCst)
            })
            .await;
        assert_eq!(fresh, 1, "a TTL of 0 reads every time");
    }
}
