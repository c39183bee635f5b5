//! What a handler may do with the request it was routed: answer it now,
//! answer it from a task, or watch a job for it. The session keeps the
//! socket, the pending requests and the metrics; a handler only sees this.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::adds::{AddInFlight, AddWaiter};
use super::pending::ReplyTo;
use super::{Session, TaskDone};
use crate::ids::{JobRef, Owner};
use crate::notifier::{JobEvent, SessionId, Snapshot};
use crate::protocol::{Id, Request, Response, RpcError};
use crate::state::Shared;

/// One routed request on its socket.
pub(crate) struct Call<'s> {
    session: &'s mut Session,
    id: Option<Id>,
    reply_to: ReplyTo,
    label: String,
    ack: bool,
    started: Instant,
}

impl<'s> Call<'s> {
    pub(super) fn new(session: &'s mut Session, req: &Request, reply_to: ReplyTo) -> Self {
        let started = session.received;
        Call {
            session,
            id: req.id.clone(),
            reply_to,
            label: req.method.clone(),
            ack: req.ack,
            started,
        }
    }

    /// The request's id; `None` for a notification, which gets no answer.
    pub fn id(&self) -> Option<&Id> {
        self.id.as_ref()
    }

    /// The user's owner tag (job ids carry it).
    pub fn owner(&self) -> &Owner {
        &self.session.owner
    }

    /// The user (`sub`) the socket was opened for.
    pub fn sub(&self) -> &str {
        &self.session.sub
    }

    /// What every session shares (queues, notifier, config).
    pub fn shared(&self) -> Arc<Shared> {
        self.session.shared.clone()
    }

    /// Moves the socket's token expiry (seconds since the epoch).
    pub fn set_deadline(&mut self, deadline: u64) {
        self.session.deadline = deadline;
    }

    /// Answers now; `about` names the job the answer is about.
    pub fn answer(self, about: Option<&str>, result: Result<Value, RpcError>) {
        self.session
            .answer(self.id, self.reply_to, &self.label, about, result);
    }

    /// True when the socket already runs its maximum of tasks
    /// (`max_in_flight`): a client must not grow them without bound.
    fn tasks_full(&self) -> bool {
        self.session.tasks.len() >= self.session.shared.config.limits.max_in_flight
    }

    /// Answers with what `task` returns, about `job_id`; with -32005 when
    /// the socket already runs its maximum of tasks.
    pub fn answer_later<F>(self, job_id: String, task: F)
    where
        F: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        if self.tasks_full() {
            let limit = self.session.shared.config.limits.max_in_flight;
            return self.answer(Some(&job_id), Err(RpcError::too_many_in_flight(limit)));
        }
        let Call {
            session,
            id,
            reply_to,
            label,
            started,
            ..
        } = self;
        session.tasks.push(Box::pin(task.map(move |result| {
            let Some(id) = id else {
                return TaskDone::Fired {
                    label,
                    result: result.map(|_| None),
                };
            };
            let response = match result {
                Ok(v) => Response::ok(id, v),
                Err(e) => Response::err(id, e),
            };
            TaskDone::Reply {
                reply_to,
                label,
                started,
                response: response.for_job(job_id),
            }
        })));
    }

    /// Runs `task` for a request nobody waits for (no id); drops it (and
    /// counts it as -32005) when the socket already runs its maximum of
    /// tasks.
    pub fn fire<F>(self, task: F)
    where
        F: Future<Output = Result<Option<Snapshot>, RpcError>> + Send + 'static,
    {
        if self.tasks_full() {
            let limit = self.session.shared.config.limits.max_in_flight;
            return self.answer(None, Err(RpcError::too_many_in_flight(limit)));
        }
        let label = self.label;
        self.session.tasks.push(Box::pin(
            task.map(move |result| TaskDone::Fired { label, result }),
        ));
    }

    /// Registers the request as waiting for `job`'s end (unless the socket
    /// already waits for its maximum, or nobody waits: no id), then runs
    /// the task that `start` makes with the session's id and job channel:
    /// it puts the watch in place and may return the job's current state.
    pub fn watch<F>(self, job: &JobRef, start: impl FnOnce(SessionId, mpsc::Sender<JobEvent>) -> F)
    where
        F: Future<Output = Result<Option<Snapshot>, RpcError>> + Send + 'static,
    {
        let Call {
            session,
            id,
            reply_to,
            label,
            ack,
            started,
        } = self;
        let Some(id) = id else { return };
        let job_id: Arc<str> = Arc::from(job.id.as_str());
        let Some(token) = session.admit(job_id.clone(), id, reply_to, label, ack, started) else {
            return;
        };
        let sender = session.job_sender();
        let task = start(session.id, sender);
        session
            .tasks
            .push(Box::pin(task.map(move |result| TaskDone::Watch {
                job_id,
                token,
                result,
            })));
    }

    /// Marks `job`'s add as in flight on this socket until the returned
    /// guard is dropped (move it into the task that adds the job).
    pub fn begin_add(&mut self, job: &JobRef) -> AddInFlight {
        self.session.adds.begin(&job.id)
    }

    /// While an add of `job_id` is in flight on this socket: what to wait
    /// on (`add_finished`) for it to be done.
    pub fn add_in_flight(&self, job_id: &str) -> Option<AddWaiter> {
        self.session.adds.get(job_id)
    }

    /// Answers every request of this socket waiting on `job_id` with
    /// `error()` and stops watching the job for this socket; returns how
    /// many there were.
    pub fn release_waiters(&mut self, job_id: &str, error: impl Fn() -> RpcError) -> usize {
        self.session.release_waiters(job_id, error)
    }
}
