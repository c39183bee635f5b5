//! A socket's bookkeeping: requests waiting for a job's end (one entry per
//! request, so each gets exactly one response) and open batches (whose
//! array is sent once every member is answered).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::time::Instant;

use super::FastMap;
use crate::notifier::JobUpdate;
use crate::protocol::{Id, Response};

/// Where a request's response goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyTo {
    /// Straight to the socket.
    Direct,
    /// Into slot `slot` of batch `batch`.
    Batch { batch: u64, slot: usize },
}

/// A request waiting for a job's end.
#[derive(Debug)]
pub(crate) struct Waiter {
    /// Tells requests on the same job apart.
    pub(crate) token: u64,
    pub(crate) id: Id,
    pub(crate) reply_to: ReplyTo,
    /// The method, for metrics.
    pub(crate) label: String,
    pub(crate) started: Instant,
    /// Send `rpc.accepted` once the job is enqueued.
    pub(crate) ack: bool,
    /// False while the submit or subscribe task runs: updates are buffered
    /// so that the ack and the job's current state go out first.
    pub(crate) ready: bool,
    pub(crate) buffered: Vec<JobUpdate>,
    /// The last progress sent for this request (sent only when it changes).
    pub(crate) last_progress: Option<Value>,
}

impl Waiter {
    /// Keeps an update seen while the submit or subscribe task runs. The
    /// buffer stays bounded: a newer progress replaces an older one (the
    /// latest wins), and nothing follows the final update.
    pub(crate) fn buffer(&mut self, update: JobUpdate) {
        if self.buffered.last().is_some_and(|u| u.is_final()) {
            return;
        }
        if matches!(update, JobUpdate::Progress(_))
            && matches!(self.buffered.last(), Some(JobUpdate::Progress(_)))
        {
            self.buffered.pop();
        }
        self.buffered.push(update);
    }
}

/// Waiting requests by job id.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    by_job: FastMap<Arc<str>, Vec<Waiter>>,
    count: usize,
    next_token: u64,
}

impl Pending {
    /// Requests waiting (the in-flight count).
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Registers a request; returns its token.
    #[allow(clippy::too_many_arguments)] // a plain record; named at the single call site
    pub(crate) fn insert(
        &mut self,
        job_id: Arc<str>,
        id: Id,
        reply_to: ReplyTo,
        label: String,
        ack: bool,
        started: Instant,
    ) -> u64 {
        self.next_token += 1;
        let token = self.next_token;
        self.by_job.entry(job_id).or_default().push(Waiter {
            token,
            id,
            reply_to,
            label,
            started,
            ack,
            ready: false,
            buffered: Vec::new(),
            last_progress: None,
        });
        self.count += 1;
        token
    }

    pub(crate) fn get_mut(&mut self, job_id: &str, token: u64) -> Option<&mut Waiter> {
        self.by_job
            .get_mut(job_id)?
            .iter_mut()
            .find(|w| w.token == token)
    }

    /// Removes one request.
    pub(crate) fn remove(&mut self, job_id: &str, token: u64) -> Option<Waiter> {
        let list = self.by_job.get_mut(job_id)?;
        let pos = list.iter().position(|w| w.token == token)?;
        let w = list.swap_remove(pos);
        if list.is_empty() {
            self.by_job.remove(job_id);
            self.release_if_empty();
        }
        self.count -= 1;
        Some(w)
    }

    /// Removes every request on a job.
    pub(crate) fn take_job(&mut self, job_id: &str) -> Vec<Waiter> {
        let list = self.by_job.remove(job_id).unwrap_or_default();
        self.count -= list.len();
        self.release_if_empty();
        list
    }

    /// A socket idle after use holds no table: the map keeps the capacity
    /// it grew to until it is dropped.
    fn release_if_empty(&mut self) {
        if self.by_job.is_empty() {
            self.by_job = FastMap::default();
        }
    }

    /// Tokens of the requests on a job, each with whether it is ready
    /// (its submit or subscribe task is done), not-ready ones first.
    pub(crate) fn tokens(&self, job_id: &str) -> Vec<(u64, bool)> {
        let mut tokens: Vec<(u64, bool)> = self
            .by_job
            .get(job_id)
            .into_iter()
            .flatten()
            .map(|w| (w.token, w.ready))
            .collect();
        tokens.sort_by_key(|&(_, ready)| ready);
        tokens
    }

    /// Whether any request waits on the job.
    pub(crate) fn watches(&self, job_id: &str) -> bool {
        self.by_job.contains_key(job_id)
    }

    /// Every job with a waiting request.
    pub(crate) fn jobs(&self) -> Vec<Arc<str>> {
        self.by_job.keys().cloned().collect()
    }
}

/// Batches waiting for their last member.
#[derive(Debug, Default)]
pub(crate) struct Batches {
    next: u64,
    open: HashMap<u64, (Vec<Option<Response>>, usize)>,
}

impl Batches {
    /// A batch expecting `answers` responses.
    pub(crate) fn open(&mut self, answers: usize) -> u64 {
        self.next += 1;
        self.open.insert(self.next, (vec![None; answers], answers));
        self.next
    }

    /// Fills a slot; returns the whole array once the batch is complete.
    pub(crate) fn fill(
        &mut self,
        batch: u64,
        slot: usize,
        response: Response,
    ) -> Option<Vec<Response>> {
        let (slots, remaining) = self.open.get_mut(&batch)?;
        match slots.get_mut(slot) {
            Some(s @ None) => {
                *s = Some(response);
                *remaining -= 1;
            }
            _ => return None,
        }
        if *remaining > 0 {
            return None;
        }
        let (slots, _) = self.open.remove(&batch)?;
        Some(slots.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batches_complete_in_slot_order() {
        let mut b = Batches::default();
        let id = b.open(2);
        assert!(b
            .fill(id, 1, Response::ok(Id::Number(2.into()), json!(2)))
            .is_none());
        assert!(
            b.fill(id, 1, Response::ok(Id::Number(9.into()), json!(9)))
                .is_none(),
            "a slot is filled once"
        );
        let all = b
            .fill(id, 0, Response::ok(Id::Number(1.into()), json!(1)))
            .unwrap();
        assert_eq!(
            all.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            vec![Id::Number(1.into()), Id::Number(2.into())]
        );
        assert!(
            b.fill(id, 0, Response::ok(Id::Null, json!(0))).is_none(),
            "closed"
        );
    }

    /// A request without an id waiting for `job`; returns its token.
    fn waiting(p: &mut Pending, job: &str) -> u64 {
        let job: Arc<str> = Arc::from(job);
        p.insert(
            job,
            Id::Null,
            ReplyTo::Direct,
            "m".into(),
            false,
            Instant::now(),
        )
    }

    #[test]
    fn buffered_updates_keep_the_latest_progress_and_the_end() {
        let mut p = Pending::default();
        let t = waiting(&mut p, "j");
        let w = p.get_mut("j", t).unwrap();
        for i in 0..1000 {
            w.buffer(JobUpdate::Progress(json!(i)));
        }
        assert_eq!(w.buffered.len(), 1);
        w.buffer(JobUpdate::Completed(json!("done").into()));
        w.buffer(JobUpdate::Progress(json!("late")));
        assert_eq!(w.buffered.len(), 2);
        assert!(matches!(&w.buffered[0], JobUpdate::Progress(v) if *v == json!(999)));
        assert!(w.buffered[1].is_final());
    }

    #[test]
    fn pending_counts_requests_per_job() {
        let mut p = Pending::default();
        let t1 = waiting(&mut p, "j");
        let t2 = waiting(&mut p, "j");
        assert_eq!(p.len(), 2);
        p.get_mut("j", t1).unwrap().ready = true;
        assert_eq!(p.tokens("j"), vec![(t2, false), (t1, true)]);
        assert!(p.remove("j", t1).is_some());
        assert!(p.watches("j"));
        assert_eq!(p.take_job("j").len(), 1);
        assert_eq!(p.len(), 0);
        assert!(!p.watches("j"));
        assert_eq!(p.by_job.capacity(), 0, "an emptied table is released");
        let t3 = waiting(&mut p, "j");
        assert!(p.remove("j", t3).is_some());
        assert_eq!(
            p.by_job.capacity(),
            0,
            "also when the last request is removed"
        );
    }
}
