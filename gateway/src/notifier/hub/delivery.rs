//! Reading watched jobs (one read in flight per job, bursts coalesced)
//! and fanning updates out to the sessions that watch them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bullmq_wire::JobSnapshot;
use tokio::sync::mpsc::error::TrySendError;

use super::Hub;
use crate::notifier::{JobEvent, JobUpdate, NotifyError, Snapshot};

impl Hub {
    pub(super) fn schedule_fetch(&mut self, id: &Arc<str>) {
        let Some(w) = self.watches.get_mut(id) else {
            return;
        };
        if w.finished {
            return;
        }
        if w.fetching {
            w.dirty = true;
            return;
        }
        w.fetching = true;
        let mut con = self.reader.clone();
        let key = w.key.clone();
        let id = id.clone();
        self.fetches.push(Box::pin(async move {
            let res = JobSnapshot::read(&mut con, &key)
                .await
                .map_err(NotifyError::from);
            (id, res)
        }));
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
        let event = JobEvent {
            job_id: id.clone(),
            update,
        };
        let metrics = &self.metrics;
        w.subs.retain(|_, tx| match tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(event)) => {
                if is_final {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(event).await;
                    });
                } else {
                    metrics
                        .progress_dropped_total
                        .fetch_add(1, Ordering::Relaxed);
                }
                true
            }
            Err(TrySendError::Closed(_)) => false,
        });
        if w.subs.is_empty() {
            self.remove(id);
        }
    }
}
