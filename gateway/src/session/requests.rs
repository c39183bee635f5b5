//! From a text frame to its handler: size check, parse, rate limits
//! (frames that carry no request are charged too, and too many within a
//! window close the socket),
//! routing (`dispatch.rs`), and what handlers reach through `Call`:
//! answers, the in-flight limit, releasing a job's waiters.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::Value;

use super::call::Call;
use super::pending::ReplyTo;
use super::Session;
use crate::dispatch::{self, Route};
use crate::handlers::submit;
use crate::metrics::outcome_label;
use crate::protocol::{
    parse, to_text, CloseReason, Id, Incoming, Item, Outcome, Response, RpcError,
};

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
            return self.on_invalid_frame(RpcError::message_too_large(text.len(), max));
        }
        match parse(text, self.shared.config.limits.max_batch) {
            Incoming::Invalid(e) => self.on_invalid_frame(e),
            Incoming::Single(item) => {
                self.count_frame(item.is_ok());
                self.on_item(item, ReplyTo::Direct)
            }
            Incoming::Batch(items) => {
                self.count_frame(items.iter().any(|i| i.is_ok()));
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
        self.on_invalid_frame(RpcError::invalid_request(
            "binary frames are not supported; send JSON-RPC as text frames",
        ));
    }

    /// A frame that carries no request (not JSON, too large, binary): it
    /// costs a token like a call and is answered with `error`, or with
    /// -32001 once (the first in a row) while the client is limited.
    fn on_invalid_frame(&mut self, error: RpcError) {
        self.count_frame(false);
        if let Err(retry_after_ms) = self.rate_limit() {
            let id = (self.limited_in_a_row == 0).then_some(Id::Null);
            return self.refuse_limited(id, ReplyTo::Direct, retry_after_ms);
        }
        self.limited_in_a_row = 0;
        self.shared
            .metrics
            .call("invalid", outcome_label(Some(error.code)), None);
        self.push(to_text(&Response::err(Id::Null, error)));
    }

    /// Counts frames that carry no request; too many within the window
    /// close the socket (4400), however many valid ones came between.
    fn count_frame(&mut self, has_request: bool) {
        if has_request {
            return;
        }
        if let Some(frames) = self.invalid_frames.note(self.received.into_std()) {
            tracing::info!(frames, "too many invalid frames; closing");
            self.closing.get_or_insert(CloseReason::InvalidFrames);
        }
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
    pub(super) fn answer(
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
        let now = self.received.into_std();
        for bucket in [&self.user_bucket, &self.ip_bucket].into_iter().flatten() {
            if let Err(wait) = bucket.try_take(now) {
                return Err(wait.as_millis().max(1) as u64);
            }
        }
        Ok(())
    }

    /// Answers a request refused by a rate limit (when it has an id) and
    /// closes the socket after too many in a row (4429).
    fn refuse_limited(&mut self, id: Option<Id>, reply_to: ReplyTo, retry_after_ms: u64) {
        self.shared
            .metrics
            .rate_limited_total
            .fetch_add(1, Ordering::Relaxed);
        self.answer(
            id,
            reply_to,
            "limited",
            None,
            Err(RpcError::rate_limited(retry_after_ms)),
        );
        self.limited_in_a_row = self.limited_in_a_row.saturating_add(1);
        let close_after = self.shared.config.limits.rate_limit_close_after;
        if close_after > 0 && self.limited_in_a_row >= close_after {
            self.closing.get_or_insert(CloseReason::RateLimitAbuse);
        }
    }

    fn on_item(&mut self, item: Item, reply_to: ReplyTo) {
        if let Err(retry_after_ms) = self.rate_limit() {
            let id = match &item {
                Ok(r) => r.id.clone(),
                Err(rejected) => rejected.id.clone(),
            };
            return self.refuse_limited(id, reply_to, retry_after_ms);
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

    /// Routes the request to its handler; the handler answers through
    /// [`Call`](super::call::Call).
    fn on_request(&mut self, req: crate::protocol::Request, reply_to: ReplyTo) {
        let shared = self.shared.clone();
        let name = req.method.clone();
        match dispatch::route(&shared.config.services, &name) {
            Ok(Route::BuiltIn(method)) => (method.handle)(Call::new(self, &req, reply_to), req),
            Ok(Route::Call(target)) => submit::handle(Call::new(self, &req, reply_to), req, target),
            Err(e) => self.answer(req.id, reply_to, "unknown", None, Err(e)),
        }
    }

    /// Registers a request that waits for a job's end, unless the
    /// connection already waits for its maximum.
    pub(super) fn admit(
        &mut self,
        job_id: Arc<str>,
        id: Id,
        reply_to: ReplyTo,
        label: String,
        ack: bool,
        started: tokio::time::Instant,
    ) -> Option<u64> {
        let limit = self.shared.config.limits.max_in_flight;
        if self.pending.len() >= limit {
            self.answer(
                Some(id),
                reply_to,
                &label,
                Some(&job_id),
                Err(RpcError::too_many_in_flight(limit)),
            );
            return None;
        }
        Some(
            self.pending
                .insert(job_id, id, reply_to, label, ack, started),
        )
    }

    /// Answers every request of this socket on the job with `error()` and
    /// stops watching it; returns how many there were.
    pub(super) fn release_waiters(&mut self, job_id: &str, error: impl Fn() -> RpcError) -> usize {
        let waiters = self.pending.take_job(job_id);
        let n = waiters.len();
        for w in waiters {
            let response = Response::err(w.id, error()).for_job(job_id.to_string());
            self.shared
                .metrics
                .call(&w.label, outcome_of(&response), None);
            self.reply(w.reply_to, response);
        }
        if n > 0 {
            self.shared.notifier.unwatch(job_id, self.id);
        }
        n
    }
}
