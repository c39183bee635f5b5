//! Reading watched jobs (one read in flight per job, bursts coalesced)
//! and fanning updates out to the sessions that watch them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bullmq_wire::JobSnapshot;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

use std::collections::HashMap;

use super::Hub;
use crate::metrics::Metrics;
use crate::notifier::routes::Route;
use crate::notifier::{JobEvent, JobUpdate, NotifyError, Snapshot};

impl Hub {
    pub(super) fn schedule_fetch(&mut self, id: &Arc<str>) {
        let Some(w) = self.watches.get_mut(id) else {
            return;
        };
        if w.finished {
            return;
        }
        // whatever asked for this read also covers a deferred one
        w.deferred = false;
        if w.fetching {
            w.dirty = true;
            return;
        }
        w.fetching = true;
        self.metrics
            .notifier_reads_total
            .fetch_add(1, Ordering::Relaxed);
        let mut con = self.reader.clone();
        let key = crate::notifier::job_key(&self.prefix, &w.job);
        let id = id.clone();
        self.fetches.push(Box::pin(async move {
            let res = JobSnapshot::read(&mut con, &key)
                .await
                .map_err(NotifyError::from);
            (id, false, res)
        }));
    }

    /// Reads every routed job (after the pub/sub connection came back).
    pub(super) fn read_routes(&mut self) {
        for (id, job) in self.routes.jobs() {
            self.metrics
                .notifier_reads_total
                .fetch_add(1, Ordering::Relaxed);
            let mut con = self.reader.clone();
            let key = crate::notifier::job_key(&self.prefix, &job);
            self.fetches.push(Box::pin(async move {
                let res = JobSnapshot::read(&mut con, &key)
                    .await
                    .map_err(NotifyError::from);
                (id, true, res)
            }));
        }
    }

    /// A routed job read again: its end or progress, if it has any, goes
    /// to its socket (one that does not exist yet is added after the
    /// read, and its end comes on the reply channel).
    pub(super) fn route_fetched(&mut self, id: Arc<str>, res: Result<Snapshot, NotifyError>) {
        let update = match res {
            Ok(snap) => snap.latest(),
            Err(e) => {
                tracing::warn!(job_id = %id, cause = %e, "notifier: cannot read job");
                None
            }
        };
        if let Some(update) = update {
            let routes = self.routes.clone();
            to_route(&mut routes.lock(), &id, update, &self.metrics);
        }
    }

    /// Makes the deferred reads whose deadline has come (those a read
    /// made meanwhile has not already covered).
    pub(super) fn deferred_due(&mut self, now: Instant) {
        while let Some((at, _)) = self.deferred.front() {
            if *at > now {
                break;
            }
            let Some((_, id)) = self.deferred.pop_front() else {
                break;
            };
            if self.watches.get(&id).is_some_and(|w| w.deferred) {
                self.schedule_fetch(&id);
            }
        }
    }

    pub(super) fn fetched(&mut self, id: Arc<str>, res: Result<Snapshot, NotifyError>) {
        let Some(w) = self.watches.get_mut(&id) else {
            return;
        };
        w.fetching = false;
        let update = match res {
            Ok(snap) if snap.exists() => {
                w.seen = true;
                snap.latest()
            }
            Ok(_) if w.seen => Some(JobUpdate::Removed),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(job_id = %id, cause = %e, "notifier: cannot read job");
                None
            }
        };
        let again = std::mem::take(&mut w.dirty);
        if let Some(update) = update {
            self.deliver(&id, update);
        }
        if again {
            self.schedule_fetch(&id);
        }
    }

    pub(super) fn deliver(&mut self, id: &Arc<str>, update: JobUpdate) {
        let Some(w) = self.watches.get_mut(id) else {
            return;
        };
        if w.finished {
            return;
        }
        if let JobUpdate::Progress(v) = &update {
            if w.last_progress.as_ref() == Some(v) {
                return;
            }
            w.last_progress = Some(v.clone());
        }
        let is_final = update.is_final();
        w.finished = is_final;
        let mut event = Some(JobEvent {
            job_id: id.clone(),
            update,
        });
        let metrics = &self.metrics;
        // the last socket gets the event itself; only the others a copy
        // (usually there is one socket, and a copy would clone the JSON)
        let mut left = w.subs.len();
        let routes = &self.routes;
        w.subs.retain(|tx| {
            left -= 1;
            let sent = send(tx, is_final, metrics, || {
                if left == 0 {
                    event.take()
                } else {
                    event.clone()
                }
            });
            if sent == Outcome::Gone {
                // the socket is gone: its watch ends here
                routes.hub_watch_ended();
                return false;
            }
            true
        });
        if w.subs.is_empty() {
            self.remove(id);
        }
    }
}

/// Sends an update to the socket routed for `job_id`; the route ends with
/// the job's end, or when its socket is gone.
pub(super) fn to_route(
    routes: &mut HashMap<Arc<str>, Route, foldhash::quality::RandomState>,
    job_id: &str,
    update: JobUpdate,
    metrics: &Metrics,
) {
    let Some((id, route)) = routes.get_key_value(job_id) else {
        return;
    };
    let is_final = update.is_final();
    let sent = send(&route.tx, is_final, metrics, || {
        Some(JobEvent {
            job_id: id.clone(),
            update,
        })
    });
    let ended = match sent {
        Outcome::Delivered => is_final,
        Outcome::Dropped => false,
        Outcome::Gone => true,
    };
    if ended {
        routes.remove(job_id);
    }
}

/// What became of an update sent to a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// No room (counted as dropped progress).
    Dropped,
    /// The socket is gone.
    Gone,
}

/// Sends the event `make` gives to a socket's job channel. Progress only
/// uses the slots above the ends' reserve, so an end always finds room
/// without a task to wait for one; `make` runs only when there is room.
fn send(
    tx: &tokio::sync::mpsc::Sender<JobEvent>,
    is_final: bool,
    metrics: &Metrics,
    make: impl FnOnce() -> Option<JobEvent>,
) -> Outcome {
    let dropped = || {
        metrics
            .progress_dropped_total
            .fetch_add(1, Ordering::Relaxed);
        Outcome::Dropped
    };
    if !has_room(tx, is_final) {
        return dropped();
    }
    let Some(event) = make() else {
        return Outcome::Dropped;
    };
    match tx.try_send(event) {
        Ok(()) => Outcome::Delivered,
        Err(TrySendError::Full(event)) => {
            // an end with no room: the socket waits on more jobs than its
            // channel reserves ends for, which sessions prevent
            tracing::error!(job = %event.job_id, "a socket's job channel has no room for an end");
            dropped()
        }
        Err(TrySendError::Closed(_)) => Outcome::Gone,
    }
}

/// Whether an update may take a slot of a socket's job channel: an end
/// always; progress only above the slots kept for ends (all but the
/// [`PROGRESS_EVENTS`](crate::notifier::PROGRESS_EVENTS) progress may use).
fn has_room(tx: &tokio::sync::mpsc::Sender<JobEvent>, is_final: bool) -> bool {
    let ends_reserve = tx
        .max_capacity()
        .saturating_sub(crate::notifier::PROGRESS_EVENTS);
    is_final || tx.capacity() > ends_reserve
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifier::{job_channel_capacity, PROGRESS_EVENTS};

    #[test]
    fn progress_never_takes_the_slots_kept_for_ends() {
        let in_flight = 3;
        let (tx, _rx) = tokio::sync::mpsc::channel(job_channel_capacity(in_flight));
        let event = |update| JobEvent {
            job_id: Arc::from("j"),
            update,
        };
        let mut sent = 0;
        while has_room(&tx, false) {
            tx.try_send(event(JobUpdate::Progress(serde_json::json!(sent))))
                .unwrap();
            sent += 1;
        }
        assert_eq!(sent, PROGRESS_EVENTS);
        for _ in 0..in_flight {
            assert!(has_room(&tx, true));
            tx.try_send(event(JobUpdate::Removed))
                .expect("room for an end");
        }
    }
}
