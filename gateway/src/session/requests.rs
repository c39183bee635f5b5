//! From a text frame to handler tasks: size check, parse, rate limits,
//! routing, in-flight limit, and the answers that need no Redis.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::pending::ReplyTo;
use super::{Session, TaskDone};
use crate::dispatch::{self, Route};
use crate::handlers::{self, cancel, status, submit, subscribe};
use crate::ids::JobRef;
use crate::metrics::outcome_label;
use crate::protocol::{parse, to_text, ErrorCode, Id, Incoming, Item, Outcome, Response, RpcError};

fn answers(item: &Item) -> bool {
    match item {
        Ok(r) => r.id.is_some(),
        Err(rejected) => rejected.id.is_some(),
    }
}

pub(super) fn outcome_of(response: &Response) -> &'static str {
    match &response.outcome {
        Outcome::Result(_) => "ok",
        Outcome::Error(e) => outcome_label(Some(e.code)),
    }
}

impl Session {
    pub(super) fn on_text(&mut self, text: &str) {
        let max = self.shared.config.limits.max_message_bytes;
        if text.len() > max {
            self.shared.metrics.call(
                "invalid",
                outcome_label(Some(ErrorCode::MessageTooLarge.code())),
                None,
            );
            let response = Response::err(Id::Null, RpcError::message_too_large(text.len(), max));
            self.push(to_text(&response));
            return;
        }
        match parse(text, self.shared.config.limits.max_batch) {
            Incoming::Invalid(e) => {
                self.shared
                    .metrics
                    .call("invalid", outcome_label(Some(e.code)), None);
                self.push(to_text(&Response::err(Id::Null, e)));
            }
            Incoming::Single(item) => self.on_item(item, ReplyTo::Direct),
            Incoming::Batch(items) => {
                let count = items.iter().filter(|i| answers(i)).count();
                let batch = (count > 0).then(|| self.batches.open(count));
                let mut slot = 0;
                for item in items {
                    let reply_to = match batch {
                        Some(batch) if answers(&item) => {
                            slot += 1;
                            ReplyTo::Batch {
                                batch,
                                slot: slot - 1,
                            }
                        }
                        _ => ReplyTo::Direct,
                    };
                    self.on_item(item, reply_to);
                }
            }
        }
    }

    pub(super) fn on_binary(&mut self) {
        self.shared.metrics.call(
            "invalid",
            outcome_label(Some(ErrorCode::InvalidRequest.code())),
            None,
        );
        let e = RpcError::invalid_request(
            "binary frames are not supported; send JSON-RPC as text frames",
        );
        self.push(to_text(&Response::err(Id::Null, e)));
    }

    /// Sends a response, or files it into its batch.
    pub(super) fn reply(&mut self, reply_to: ReplyTo, response: Response) {
        match reply_to {
            ReplyTo::Direct => self.push(to_text(&response)),
            ReplyTo::Batch { batch, slot } => {
                if let Some(all) = self.batches.fill(batch, slot, response) {
                    self.push(to_text(&all));
                }
            }
        }
    }

    /// Records the outcome and answers a request that has an id.
    fn answer(
        &mut self,
        id: Option<Id>,
        reply_to: ReplyTo,
        label: &str,
        job: Option<&str>,
        result: Result<Value, RpcError>,
    ) {
        let response = match (id, result) {
            (None, r) => {
                self.shared
                    .metrics
                    .call(label, outcome_label(r.err().map(|e| e.code)), None);
                return;
            }
            (Some(id), Ok(v)) => Response::ok(id, v),
            (Some(id), Err(e)) => Response::err(id, e),
        };
        let response = match job {
            Some(j) => response.for_job(j),
            None => response,
        };
        self.shared.metrics.call(label, outcome_of(&response), None);
        self.reply(reply_to, response);
    }

    /// Takes a token from the user's and the IP's bucket.
    fn rate_limit(&mut self) -> Result<(), u64> {
        let now = std::time::Instant::now();
        for bucket in [&self.user_bucket, &self.ip_bucket].into_iter().flatten() {
            if let Err(wait) = bucket.try_take(now) {
                return Err(wait.as_millis().max(1) as u64);
            }
        }
        Ok(())
    }

    fn on_item(&mut self, item: Item, reply_to: ReplyTo) {
        if let Err(retry_after_ms) = self.rate_limit() {
            self.shared
                .metrics
                .rate_limited_total
                .fetch_add(1, Ordering::Relaxed);
            let id = match &item {
                Ok(r) => r.id.clone(),
                Err(rejected) => rejected.id.clone(),
            };
            self.answer(
                id,
                reply_to,
                "limited",
                None,
                Err(RpcError::rate_limited(retry_after_ms)),
            );
            self.limited_in_a_row += 1;
            let close_after = self.shared.config.limits.rate_limit_close_after;
            if close_after > 0 && self.limited_in_a_row >= close_after {
                self.closing
                    .get_or_insert(crate::protocol::CloseReason::RateLimitAbuse);
            }
            return;
        }
        self.limited_in_a_row = 0;
        match item {
            Err(rejected) => {
                self.shared
                    .metrics
                    .call("invalid", outcome_label(Some(rejected.error.code)), None);
                if let Some(response) = rejected.into_response() {
                    self.reply(reply_to, response);
                }
            }
            Ok(req) => self.on_request(req, reply_to),
        }
    }

    fn on_request(&mut self, mut req: crate::protocol::Request, reply_to: ReplyTo) {
        let shared = self.shared.clone();
        let label = req.method.clone();
        let route = match dispatch::route(&shared.config.services, &label) {
            Ok(r) => r,
            Err(e) => return self.answer(req.id, reply_to, "unknown", None, Err(e)),
        };
        let started = Instant::now();
        // Built-ins about a job name it in every answer, found or not, so
        // another user's job id is answered exactly like an unknown one.
        let about = match route {
            Route::Auth | Route::Call { .. } => None,
            _ => handlers::job_id_param(req.params.as_ref()).ok(),
        };
        let about = about.as_deref();
        match route {
            Route::Auth => {
                let result = handlers::auth::refresh(&shared.auth, &self.sub, req.params.as_ref())
                    .map(|(claims, deadline)| {
                        self.deadline = deadline;
                        handlers::auth::answer(&claims)
                    });
                self.answer(req.id, reply_to, &label, None, result);
            }
            Route::Unsubscribe => {
                let result = handlers::owned_job(req.params.as_ref(), &self.owner)
                    .and_then(|job| self.unsubscribe(&job));
                self.answer(req.id, reply_to, &label, about, result);
            }
            Route::Status | Route::Cancel => {
                let job = match handlers::owned_job(req.params.as_ref(), &self.owner) {
                    Ok(job) => job,
                    Err(e) => return self.answer(req.id, reply_to, &label, about, Err(e)),
                };
                let Some(queue) = shared.queues.get(&job.queue).map(|b| b.queue().clone()) else {
                    return self.answer(
                        req.id,
                        reply_to,
                        &label,
                        about,
                        Err(RpcError::not_found(&job.id)),
                    );
                };
                let is_status = matches!(route, Route::Status);
                let id = req.id;
                if id.is_none() && is_status {
                    return; // a status nobody reads
                }
                self.tasks.push(Box::pin(async move {
                    let job_id = job.id.clone();
                    let result = if is_status {
                        status::run(queue, job).await
                    } else {
                        cancel::run(queue, job).await
                    };
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
                }));
            }
            Route::Subscribe => {
                let job = match handlers::owned_job(req.params.as_ref(), &self.owner) {
                    Ok(job) => job,
                    Err(e) => return self.answer(req.id, reply_to, &label, about, Err(e)),
                };
                let Some(id) = req.id else { return }; // nothing to answer: nothing to do
                let Some(token) = self.admit(&job, id, reply_to, &label, req.ack) else {
                    return;
                };
                let (notifier, session, tx) =
                    (shared.notifier.clone(), self.id, self.jobs_tx.clone());
                let job_id: Arc<str> = Arc::from(job.id.as_str());
                self.tasks.push(Box::pin(async move {
                    let result = subscribe::run(notifier, job, session, tx).await;
                    TaskDone::Watch {
                        job_id,
                        token,
                        result,
                    }
                }));
            }
            Route::Call {
                service,
                method,
                config,
            } => {
                let prepared = submit::prepare(
                    &mut req,
                    &self.owner,
                    service,
                    method,
                    config,
                    &shared.config.jobs,
                );
                let call = match prepared {
                    Ok(call) => call,
                    Err(e) => return self.answer(req.id, reply_to, &label, None, Err(e)),
                };
                let Some(queue) = shared.queues.get(service).cloned() else {
                    return self.answer(
                        req.id,
                        reply_to,
                        &label,
                        None,
                        Err(RpcError::method_not_found(&req.method)),
                    );
                };
                let notifier = shared.notifier.clone();
                match req.id {
                    None => self.tasks.push(Box::pin(async move {
                        let result = submit::run(queue, notifier, call, None).await;
                        TaskDone::Fired { label, result }
                    })),
                    Some(id) => {
                        let Some(token) = self.admit(&call.job, id, reply_to, &label, req.ack)
                        else {
                            return;
                        };
                        let watch = Some((self.id, self.jobs_tx.clone()));
                        let job_id: Arc<str> = Arc::from(call.job.id.as_str());
                        self.tasks.push(Box::pin(async move {
                            let result = submit::run(queue, notifier, call, watch).await;
                            TaskDone::Watch {
                                job_id,
                                token,
                                result,
                            }
                        }));
                    }
                }
            }
        }
    }

    /// Registers a request that waits for a job's end, unless the
    /// connection already waits for its maximum.
    fn admit(
        &mut self,
        job: &JobRef,
        id: Id,
        reply_to: ReplyTo,
        label: &str,
        ack: bool,
    ) -> Option<u64> {
        let limit = self.shared.config.limits.max_in_flight;
        if self.pending.len() >= limit {
            self.answer(
                Some(id),
                reply_to,
                label,
                Some(&job.id),
                Err(RpcError::too_many_in_flight(limit)),
            );
            return None;
        }
        Some(self.pending.insert(
            Arc::from(job.id.as_str()),
            id,
            reply_to,
            label.to_string(),
            ack,
        ))
    }

    /// `rpc.unsubscribe`: every request of this socket on the job is
    /// answered with -32012 and the job is no longer watched. A job this
    /// socket does not watch is not found (as another user's would be).
    fn unsubscribe(&mut self, job: &JobRef) -> Result<Value, RpcError> {
        let waiters = self.pending.take_job(&job.id);
        let n = waiters.len();
        if n == 0 {
            return Err(RpcError::not_found(&job.id));
        }
        for w in waiters {
            let e = RpcError::new(ErrorCode::Unsubscribed).data(json!({ "jobId": job.id }));
            let response = Response::err(w.id, e).for_job(job.id.clone());
            self.shared
                .metrics
                .call(&w.label, outcome_of(&response), None);
            self.reply(w.reply_to, response);
        }
        self.shared.notifier.unwatch(&job.id, self.id);
        Ok(json!({ "jobId": job.id, "unsubscribed": n }))
    }
}
