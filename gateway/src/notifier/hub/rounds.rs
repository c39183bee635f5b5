//! Subscription rounds: everything that changed since the last round goes
//! out as one `UNSUBSCRIBE` and one `SUBSCRIBE`, pipelined, and watchers are told once
//! Redis confirmed; a lost connection resubscribes everything.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::time::Instant;

use super::{Hub, Round, SubState};
use crate::notifier::NotifyError;

impl Hub {
    /// One batched UNSUBSCRIBE + SUBSCRIBE for everything that changed.
    pub(super) fn start_round(&mut self) -> Option<Round> {
        let mut sink = self.sink.clone()?;
        let generation = self.generation;
        let mut unsub_channels = Vec::new();
        for id in std::mem::take(&mut self.to_unsubscribe) {
            if self.watches.contains_key(&id) {
                continue; // watched again meanwhile: keep the subscription
            }
            if let Some(chs) = self.subscribed.remove(&id) {
                unsub_channels.extend(chs);
            }
        }
        let mut ids = Vec::new();
        let mut sub_channels = Vec::new();
        let mut seen = HashSet::new();
        for id in std::mem::take(&mut self.to_subscribe) {
            let Some(w) = self.watches.get_mut(&id) else {
                continue;
            };
            if w.state != SubState::Unsubscribed || !seen.insert(id.clone()) {
                continue;
            }
            w.state = SubState::Pending;
            sub_channels.extend(w.channels.iter().cloned());
            self.subscribed.insert(id.clone(), w.channels.clone());
            ids.push(id);
        }
        if ids.is_empty() && unsub_channels.is_empty() {
            return None;
        }
        // Both go out in one write and cost one round trip: a channel is
        // never in both lists (an id watched again is not unsubscribed).
        let mut sub_sink = sink.clone();
        Some(Box::pin(async move {
            let unsubscribe = async {
                if unsub_channels.is_empty() {
                    return Ok(());
                }
                sink.unsubscribe(unsub_channels).await
            };
            let subscribe = async {
                if sub_channels.is_empty() {
                    return Ok(());
                }
                sub_sink.subscribe(sub_channels).await
            };
            let (unsubscribed, subscribed) = futures::future::join(unsubscribe, subscribe).await;
            let result = unsubscribed.and(subscribed);
            (generation, ids, result.map_err(NotifyError::from))
        }))
    }

    pub(super) fn round_done(&mut self, ids: Vec<Arc<str>>, result: Result<(), NotifyError>) {
        match result {
            Ok(()) => {
                for id in ids {
                    let Some(w) = self.watches.get_mut(&id) else {
                        continue;
                    };
                    if w.state != SubState::Pending {
                        continue;
                    }
                    w.state = SubState::Subscribed;
                    for waiter in w.waiters.drain(..) {
                        let _ = waiter.done.send(Ok(()));
                    }
                    if std::mem::take(&mut w.catch_up) {
                        self.schedule_fetch(&id);
                    }
                }
            }
            Err(e) => {
                // The round's watches wait on: they are subscribed again on
                // the next connection (or fail once their outage wait ends).
                tracing::warn!(cause = %e, watches = ids.len(), "notifier: subscribe failed; reconnecting");
                self.disconnected();
            }
        }
    }

    /// The connection is gone: everything must be subscribed again, and
    /// read again once it is (changes may have been missed). Watches
    /// waiting for their subscription keep waiting for the next connection.
    pub(super) fn disconnected(&mut self) {
        self.sink = None;
        self.subscribed.clear();
        self.to_unsubscribe.clear();
        self.to_subscribe.clear();
        for (id, w) in self.watches.iter_mut() {
            w.state = SubState::Unsubscribed;
            w.catch_up = true;
            // the creation may have happened unseen: read on the next change
            w.creation_pending = false;
            w.activation_pending = false;
            self.to_subscribe.push(id.clone());
        }
    }

    /// Redis cannot be reached (a connection attempt failed): watches
    /// that have waited their outage wait fail now (their clients get
    /// "Redis unavailable"); the others wait for the next attempt.
    pub(super) fn expire_waiters(&mut self, now: Instant) {
        for w in self.watches.values_mut() {
            let (expired, waiting) = std::mem::take(&mut w.waiters)
                .into_iter()
                .partition::<Vec<_>, _>(|waiter| waiter.until <= now);
            w.waiters = waiting;
            for waiter in expired {
                let _ = waiter
                    .done
                    .send(Err(NotifyError::Redis("redis unreachable".into())));
            }
        }
    }
}
