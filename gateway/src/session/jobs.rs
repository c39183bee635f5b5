//! Job updates reaching the socket: the end of a submit or subscribe task,
//! and the notifier's events. Each request gets its progress (when it
//! changed) and exactly one final response.

use std::sync::Arc;

use serde_json::json;

use super::requests::outcome_of;
use super::{Session, TaskDone};
use crate::notifier::{JobEvent, JobUpdate, Snapshot};
use crate::protocol::{to_text, ErrorCode, Notification, Response, RpcError};

/// The updates a fresh read of the job stands for.
fn snapshot_updates(snapshot: Option<Snapshot>) -> Vec<JobUpdate> {
    snapshot.and_then(|s| s.latest()).into_iter().collect()
}

impl Session {
    pub(super) fn on_task_done(&mut self, done: TaskDone) {
        match done {
            TaskDone::Reply {
                reply_to,
                label,
                started,
                response,
            } => {
                self.shared
                    .metrics
                    .call(&label, outcome_of(&response), Some(started.elapsed()));
                self.reply(reply_to, response);
            }
            TaskDone::Fired { label, result } => {
                let code = result.as_ref().err().map(|e| e.code);
                if let Err(e) = &result {
                    tracing::debug!(method = %crate::log_guard::Untrusted(&label), error = %crate::log_guard::Untrusted(&e.message), "fire-and-forget call failed");
                }
                self.shared
                    .metrics
                    .call(&label, crate::metrics::outcome_label(code), None);
            }
            TaskDone::Watch {
                job_id,
                token,
                result,
            } => match result {
                Err(e) => {
                    if let Some(w) = self.pending.remove(&job_id, token) {
                        let response = Response::err(w.id, e).for_job(job_id.to_string());
                        self.shared.metrics.call(
                            &w.label,
                            outcome_of(&response),
                            Some(w.started.elapsed()),
                        );
                        self.reply(w.reply_to, response);
                    }
                    self.unwatch_if_idle(&job_id);
                }
                Ok(snapshot) => {
                    let Some(w) = self.pending.get_mut(&job_id, token) else {
                        // Unsubscribed while the task ran.
                        self.unwatch_if_idle(&job_id);
                        return;
                    };
                    w.ready = true;
                    let ack = w
                        .ack
                        .then(|| to_text(&Notification::accepted(&w.id, &job_id)));
                    // Updates seen during the task first, then the state
                    // read at its end (the latest).
                    let mut updates = std::mem::take(&mut w.buffered);
                    updates.extend(snapshot_updates(snapshot));
                    if let Some(ack) = ack {
                        self.push(ack);
                    }
                    for update in updates {
                        if !self.apply(&job_id, token, update) {
                            break;
                        }
                    }
                }
            },
        }
    }

    pub(super) fn on_job_event(&mut self, ev: JobEvent) {
        let JobEvent { job_id, update } = ev;
        let tokens = self.pending.tokens(&job_id);
        // the last request takes the update itself: a result is cloned
        // only when several requests on this socket wait for the job
        let mut update = Some(update);
        let last = tokens.len().saturating_sub(1);
        for (i, (token, ready)) in tokens.into_iter().enumerate() {
            let Some(this) = (if i == last {
                update.take()
            } else {
                update.clone()
            }) else {
                return;
            };
            if ready {
                self.apply(&job_id, token, this);
            } else if let Some(w) = self.pending.get_mut(&job_id, token) {
                w.buffer(this);
            }
        }
    }

    /// Sends one update to one request; false once the request is answered.
    fn apply(&mut self, job_id: &Arc<str>, token: u64, update: JobUpdate) -> bool {
        let final_error = match update {
            JobUpdate::Progress(v) => {
                let Some(w) = self.pending.get_mut(job_id, token) else {
                    return false;
                };
                if w.last_progress.as_ref() != Some(&v) {
                    let text = to_text(&Notification::progress(&w.id, job_id, &v));
                    w.last_progress = Some(v);
                    self.push(text);
                }
                return true;
            }
            JobUpdate::Completed(v) => Ok(v),
            JobUpdate::Failed {
                reason,
                attempts_made,
            } => Err(RpcError::job_failed(&reason, attempts_made)),
            JobUpdate::Removed => {
                Err(RpcError::new(ErrorCode::JobRemoved).data(json!({ "jobId": &**job_id })))
            }
        };
        let Some(w) = self.pending.remove(job_id, token) else {
            return false;
        };
        let response = match final_error {
            Ok(v) => Response::ok_text(w.id, v),
            Err(e) => Response::err(w.id, e),
        }
        .for_job(job_id.to_string());
        self.shared
            .metrics
            .call(&w.label, outcome_of(&response), Some(w.started.elapsed()));
        self.reply(w.reply_to, response);
        self.unwatch_if_idle(job_id);
        false
    }

    fn unwatch_if_idle(&mut self, job_id: &Arc<str>) {
        if !self.pending.watches(job_id) {
            self.shared.notifier.unwatch(job_id.clone(), self.id);
        }
    }
}
