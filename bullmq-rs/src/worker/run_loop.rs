//! The worker's one loop. It owns the worker's jobs: it runs their handlers
//! (as futures it polls itself, or as spawned tasks), and it keeps up to two
//! script calls in flight, each settling every job finished since the last
//! call and fetching jobs for the free slots. While calls are in flight,
//! handlers keep running and finished jobs queue up for the next call, so
//! the busier the worker, the more jobs each call carries; the second call
//! keeps Redis busy while the worker handles the first one's reply. When
//! the queue is drained the loop waits on the marker, and its next fetch
//! waits in Redis right behind that wait (`marker.rs`).

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt as _, StreamExt as _};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::in_flight::InFlight;
use super::marker::{self, Answer, MarkerWaiter, Woken};
use super::outcome::{Kind, Outcome};
use super::reply::Fetched;
use super::script_call::{read_reply, script_call};
use super::watch_events::Watchers;
use super::{locks, stalled, Held, JobError, Processor, WorkerOptions};
use crate::error::Result;
use crate::job::Job;
use crate::job::ProgressHook;
use crate::queue::Queue;
use crate::scheduler;
use crate::time::now_ms;

/// Where the worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Fetching and processing.
    Running,
    /// Closing: no more fetches; running jobs finish.
    Draining,
    /// Closing now: running jobs are handed back to `wait`.
    HandBack,
}

/// The longest a worker blocks on the marker when a delayed job is pending
/// (BullMQ's `maximumBlockTimeout`).
const MAX_BLOCK: Duration = Duration::from_secs(10);

/// Script calls one worker keeps in flight at most.
const MAX_CALLS: usize = 2;

/// A script call in flight: gives back the outcomes it carried (to retry
/// them if the call failed) and what it fetched.
type Call = BoxFuture<'static, (Vec<Outcome>, usize, Result<Fetched>)>;

/// What the loop knows of the queue from its last fetches.
#[derive(Default)]
struct Seen {
    /// The last fetch found fewer jobs than it wanted: wait for a marker.
    drained: bool,
    /// When the next delayed job is due (ms; 0 = none known).
    next_delayed: f64,
    /// The rate limit allows no job before then.
    limited_until: Option<Instant>,
    /// A marker woke us while calls were in flight (see their results).
    woken_during_call: bool,
}

/// A fetch sent behind the marker wait: the slots it may fill and its
/// first lock token.
#[derive(Clone, Copy)]
struct Behind {
    want: usize,
    token_start: u64,
}

pub(crate) struct Runner {
    queue: Queue,
    opts: Arc<WorkerOptions>,
    processor: Processor,
    stop: watch::Receiver<Stop>,
    held: Held,
    token_prefix: Arc<str>,
    next_token: u64,
    /// Handlers running now, each resolving to its job's outcome.
    running: FuturesUnordered<BoxFuture<'static, Outcome>>,
    /// Tasks of handlers run with `spawn_handlers`, to stop them on hand-back.
    spawned: Vec<AbortHandle>,
    marker: MarkerWaiter,
    watchers: Watchers,
    /// Given to every fetched job, so its progress reaches the watchers.
    on_progress: ProgressHook,
}

impl Runner {
    pub(crate) async fn new(
        queue: Queue,
        opts: WorkerOptions,
        processor: Processor,
        stop: watch::Receiver<Stop>,
        watchers: Watchers,
    ) -> Result<Self> {
        let client_name = queue.keys().worker_client_name(opts.name.as_deref());
        let marker = MarkerWaiter::start(queue.clone(), client_name).await?;
        Ok(Runner {
            queue,
            opts: Arc::new(opts),
            processor,
            stop,
            held: Held::default(),
            token_prefix: format!("{}:", uuid::Uuid::new_v4()).into(),
            next_token: 1,
            running: FuturesUnordered::new(),
            spawned: Vec::new(),
            marker,
            on_progress: watchers.progress_hook(),
            watchers,
        })
    }

    pub(crate) async fn run(mut self) {
        let renew_every = self
            .opts
            .lock_renew_time
            .unwrap_or(self.opts.lock_duration / 2)
            .max(Duration::from_millis(5));
        let renewer = tokio::spawn(locks::renew_loop(
            self.queue.clone(),
            self.held.clone(),
            self.opts.lock_duration,
            renew_every,
        ));
        let checker = (!self.opts.skip_stalled_check).then(|| {
            tokio::spawn(stalled::check_loop(
                self.queue.clone(),
                self.opts.max_stalled_count,
                self.opts.stalled_interval,
            ))
        });

        let mut pending: Vec<Outcome> = Vec::new();
        let mut calls: InFlight<(Vec<Outcome>, usize, Result<Fetched>)> = InFlight::new();
        // slots the calls in flight (and a fetch behind the marker wait)
        // may fill with the jobs they fetch
        let mut reserved = 0usize;
        let mut behind: Option<Behind> = None;
        let mut seen = Seen::default();
        let mut retry_at: Option<Instant> = None;
        let mut failures: u32 = 0;
        let mut handed_back = false;
        // false once the Worker handle is gone: `changed()` would then
        // return at once forever
        let mut stop_open = true;
        loop {
            let stop = *self.stop.borrow();
            if stop == Stop::HandBack && !handed_back {
                self.hand_back(&mut pending);
                handed_back = true;
            }
            let now = Instant::now();
            let limited = seen.limited_until.is_some_and(|t| now < t);
            let backing_off = retry_at.is_some_and(|t| now < t);
            let slots = if stop == Stop::Running {
                self.opts
                    .concurrency
                    .saturating_sub(self.running.len() + reserved)
            } else {
                0
            };
            let want = if seen.drained || limited { 0 } else { slots };

            if calls.len() < MAX_CALLS && !backing_off && (!pending.is_empty() || want > 0) {
                reserved += want;
                calls.push(self.start_call(std::mem::take(&mut pending), want));
            }
            if stop != Stop::Running {
                // the jobs a fetch behind the wait takes must reach us
                self.marker.cancel();
            }
            if calls.is_empty()
                && pending.is_empty()
                && stop != Stop::Running
                && self.running.is_empty()
                && !self.marker.is_fetching()
            {
                break;
            }
            let wait_for_marker = calls.is_empty()
                && seen.drained
                && slots > 0
                && stop == Stop::Running
                && !backing_off;
            if wait_for_marker && !self.marker.is_armed() {
                let timeout = block_timeout(seen.next_delayed, self.opts.drain_delay);
                if self.marker.fetches_behind() {
                    // the fetch goes with the wait: it holds the free slots
                    // and their tokens until the answer is in
                    let token_start = self.next_token;
                    let fetch = script_call(
                        &self.queue,
                        &self.opts,
                        &self.token_prefix,
                        token_start,
                        &[],
                        slots,
                    );
                    if self.marker.arm(timeout, Some(fetch.into_cmd())) {
                        self.next_token += slots as u64;
                        reserved += slots;
                        behind = Some(Behind {
                            want: slots,
                            token_start,
                        });
                    }
                } else {
                    self.marker.arm(timeout, None);
                }
            }
            let armed = self.marker.is_armed();
            tokio::select! {
                Some((batch, wanted, result)) = calls.next(), if !calls.is_empty() => {
                    reserved -= wanted;
                    match result {
                        Ok(fetched) => {
                            failures = 0;
                            self.settled(&batch);
                            self.watchers.settled(&batch, &fetched.recorded);
                            // a marker popped while this call ran may be for
                            // a job added after the call looked
                            let woken = seen.woken_during_call;
                            if calls.is_empty() {
                                seen.woken_during_call = false;
                            }
                            self.absorb(fetched, wanted, woken, &mut seen, &mut pending);
                        }
                        Err(e) => {
                            self.watchers.error(&e);
                            pending.splice(0..0, batch);
                            failures += 1;
                            let pause = Duration::from_millis((100u64 << failures.min(5)).min(3_000));
                            tracing::warn!(queue = self.queue.name(), error = %e, retry_in = ?pause, "worker cannot reach redis; results are kept and retried");
                            retry_at = Some(Instant::now() + pause);
                        }
                    }
                }
                Some(outcome) = self.running.next(), if !self.running.is_empty() => {
                    self.collect(outcome, &mut pending);
                    // take every other handler that is done too, for one call
                    while let Some(Some(o)) = self.running.next().now_or_never() {
                        self.collect(o, &mut pending);
                    }
                }
                answer = self.marker.woken(), if armed => {
                    let mut free = slots;
                    let sent = behind.take();
                    if let Some(b) = sent {
                        reserved -= b.want;
                        free += b.want;
                    }
                    let Answer { woken, fetched } = answer;
                    let fetched = match (sent, fetched) {
                        (Some(b), Some(reply)) => self.read_behind(b, reply),
                        _ => None,
                    };
                    match (woken, fetched) {
                        (woken, Some((wanted, fetched))) => {
                            // the fetch ran once the wait ended: it saw the
                            // queue as it is now, marker included
                            if let Woken::Marker(_, score) = woken {
                                if score > now_ms() as f64 {
                                    seen.next_delayed = earliest_due(seen.next_delayed, score);
                                }
                            }
                            self.absorb(fetched, wanted, false, &mut seen, &mut pending);
                        }
                        (Woken::Marker(_, score), None) if score > now_ms() as f64 => {
                            seen.next_delayed = earliest_due(seen.next_delayed, score);
                        }
                        (Woken::Marker(member, _), None) if free == 0 || stop != Stop::Running => {
                            // not ours to use any more: leave it for another worker
                            tokio::spawn(marker::restore(self.queue.clone(), member));
                        }
                        (_, None) => {
                            seen.drained = false;
                            seen.woken_during_call = !calls.is_empty();
                        }
                    }
                }
                _ = sleep_until(seen.limited_until), if limited => {}
                _ = sleep_until(retry_at), if backing_off => retry_at = None,
                changed = self.stop.changed(), if stop_open => stop_open = changed.is_ok(),
            }
        }
        renewer.abort();
        if let Some(c) = checker {
            c.abort();
        }
    }

    /// Starts one script call: settle `batch` (when any) and fetch up to
    /// `want` jobs.
    fn start_call(&mut self, batch: Vec<Outcome>, want: usize) -> Call {
        let token_start = self.next_token;
        self.next_token += want as u64;
        let call = script_call(
            &self.queue,
            &self.opts,
            &self.token_prefix,
            token_start,
            &batch,
            want,
        );
        let queue = self.queue.clone();
        let prefix = self.token_prefix.clone();
        Box::pin(async move {
            let result = match call.invoke::<Vec<u8>, _>(&mut queue.con()).await {
                Ok(packed) => read_reply(&queue, &prefix, token_start, &batch, &packed),
                Err(e) => Err(e),
            };
            (batch, want, result)
        })
    }

    /// Takes a fetch's answer: its jobs start (or go straight back to
    /// `wait` when the worker is closing), and what it saw of the
    /// queue steers the next fetch.
    fn absorb(
        &mut self,
        fetched: Fetched,
        wanted: usize,
        woken_during_call: bool,
        seen: &mut Seen,
        pending: &mut Vec<Outcome>,
    ) {
        if wanted > 0 {
            seen.drained = (fetched.jobs.len() < wanted || fetched.blocked) && !woken_during_call;
        }
        seen.next_delayed = earliest_due(seen.next_delayed, fetched.next_delayed);
        seen.limited_until = (fetched.rate_limit_ttl > 0)
            .then(|| Instant::now() + Duration::from_millis(fetched.rate_limit_ttl as u64));
        if seen.limited_until.is_some() {
            seen.drained = false;
        }
        // a closing worker starts nothing new: what a fetch brings in
        // while it closes goes back for another worker at once
        let hand_back = *self.stop.borrow() != Stop::Running;
        for mut job in fetched.jobs {
            if hand_back {
                if let Some(token) = job.token.take() {
                    pending.push(Outcome::hand_back(job.id, token));
                }
                continue;
            }
            job.on_progress = Some(self.on_progress.clone());
            job.publish_progress = self.opts.publish_results;
            self.dispatch(job);
        }
    }

    /// The jobs of a fetch that ran behind the marker wait; `None` when it
    /// did not run or its reply cannot be read (the loop fetches again).
    fn read_behind(
        &self,
        b: Behind,
        reply: redis::RedisResult<Vec<u8>>,
    ) -> Option<(usize, Fetched)> {
        let read = reply.map_err(crate::Error::from).and_then(|packed| {
            read_reply(&self.queue, &self.token_prefix, b.token_start, &[], &packed)
        });
        match read {
            Ok(fetched) => Some((b.want, fetched)),
            Err(e) => {
                // NOSCRIPT after a restart or a flush, mostly: the fetch the
                // loop makes next sends the script's body
                tracing::debug!(queue = self.queue.name(), error = %e, "the fetch behind the wait failed; fetching again");
                None
            }
        }
    }

    fn dispatch(&mut self, mut job: Job) {
        let Some(token) = job.token.clone() else {
            return;
        };
        if let Ok(mut held) = self.held.lock() {
            held.insert(job.id.clone(), token.clone());
        }
        let processor = self.processor.clone();
        let opts = self.opts.clone();
        let (job_id, lock_token) = (job.id.clone(), token.clone());
        // What deciding the outcome needs of the job, kept while the handler
        // owns it. The data can be large: it is kept only when a custom
        // backoff strategy may read it.
        let kept = if opts.backoff_strategy.is_some() {
            job.clone()
        } else {
            let data = std::mem::take(&mut job.data);
            let kept = job.clone();
            job.data = data;
            kept
        };
        let run = async move {
            if job.repeat_job_key.is_some() {
                // as a BullMQ worker does: the scheduler's next iteration
                // first, then the handler (a failure here does not stop it)
                schedule_next_iteration(&job).await;
            }
            let result = process(&processor, job, &opts).await;
            Outcome::decide(&kept, token, result, &opts)
        };
        if self.opts.spawn_handlers {
            let task = tokio::spawn(run);
            self.spawned.retain(|h| !h.is_finished());
            self.spawned.push(task.abort_handle());
            self.running.push(Box::pin(async move {
                // panics are caught inside `process`; a task can only end
                // without an outcome when the runtime shuts down under it
                task.await.unwrap_or_else(|e| {
                    tracing::warn!(job_id = %job_id, error = %e, "handler task ended without a result; handing the job back");
                    Outcome::hand_back(job_id, lock_token)
                })
            }));
        } else {
            self.running.push(Box::pin(run));
        }
    }

    /// Queues a finished attempt for the next call; a job its handler moved
    /// to waiting-children has nothing to settle and is just let go.
    fn collect(&mut self, outcome: Outcome, pending: &mut Vec<Outcome>) {
        if outcome.kind == Kind::WaitingChildren {
            self.settled(std::slice::from_ref(&outcome));
        } else {
            pending.push(outcome);
        }
    }

    /// Settled jobs need no more lock renewal.
    fn settled(&mut self, batch: &[Outcome]) {
        if let Ok(mut held) = self.held.lock() {
            for o in batch {
                held.remove(&o.job_id);
            }
        }
    }

    /// Stops every running handler and queues a hand-back for each held job
    /// that did not finish first.
    fn hand_back(&mut self, pending: &mut Vec<Outcome>) {
        for h in self.spawned.drain(..) {
            h.abort();
        }
        while let Some(Some(o)) = self.running.next().now_or_never() {
            self.collect(o, pending);
        }
        self.running = FuturesUnordered::new();
        let done: HashSet<String> = pending.iter().map(|o| o.job_id.clone()).collect();
        let held: Vec<(String, String)> = match self.held.lock() {
            Ok(h) => h.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
            Err(_) => Vec::new(),
        };
        for (id, token) in held {
            if !done.contains(&id) {
                tracing::info!(queue = self.queue.name(), job_id = %id, "worker closing: handing the job back to wait");
                pending.push(Outcome::hand_back(id, token));
            }
        }
    }
}

/// Adds the next iteration of the scheduler that produced `job`, retrying
/// while Redis is unreachable for a short while; failures are logged.
async fn schedule_next_iteration(job: &Job) {
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=5 {
        match scheduler::add_next_iteration(job).await {
            Ok(next) => {
                tracing::debug!(job_id = %job.id, next = ?next, "job scheduler: next iteration");
                return;
            }
            Err(e) if e.is_retryable() && attempt < 5 => {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, scheduler = ?job.repeat_job_key, error = %e,
                    "failed to add the job scheduler's next iteration; it stops until the scheduler is upserted again");
                return;
            }
        }
    }
}

/// Signals a running worker loop to hand back its jobs.
pub(crate) fn request_handback(stop: &watch::Sender<Stop>) {
    let _ = stop.send(Stop::HandBack);
}

/// Runs the handler with BullMQ's guards, a timeout and panic capture.
async fn process(
    processor: &Processor,
    job: Job,
    opts: &WorkerOptions,
) -> std::result::Result<Value, JobError> {
    if let Some(reason) = &job.deferred_failure {
        return Err(JobError::unrecoverable(reason.clone()));
    }
    if let Some(max) = opts.max_started_attempts {
        if job.attempts_started > max {
            return Err(JobError::unrecoverable(
                "job started more than allowable limit",
            ));
        }
    }
    let timeout = job
        .opts
        .timeout
        .filter(|t| !t.is_zero())
        .or(opts.job_timeout);
    let run = AssertUnwindSafe(processor(job)).catch_unwind();
    let result = match timeout {
        Some(t) => match tokio::time::timeout(t, run).await {
            Ok(r) => r,
            Err(_) => {
                return Err(
                    JobError::new(format!("job timed out after {} ms", t.as_millis()))
                        .without_location(),
                )
            }
        },
        None => run.await,
    };
    result.unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(JobError::new(format!("handler panicked: {msg}")).without_location())
    })
}

/// BullMQ's block timeout: the drain delay when nothing is delayed, else
/// until the next delayed job is due, at most 10 s, at least 1 ms.
fn block_timeout(next_delayed: f64, drain_delay: Duration) -> Duration {
    if next_delayed <= 0.0 {
        return drain_delay;
    }
    let ms = (next_delayed - now_ms() as f64).max(1.0);
    Duration::from_secs_f64(ms / 1000.0).min(MAX_BLOCK)
}

/// The earlier of two due times (ms; 0 = none) that is still to come. A
/// reply's "nothing delayed" must not erase a due time the marker reported
/// while the call ran (a finish that delayed a retry sets the marker, and
/// the blocked wait can pop it before the call's reply is read); a due time
/// that turns out stale costs one fetch, whose reply then replaces it.
fn earliest_due(known: f64, reported: f64) -> f64 {
    let now = now_ms() as f64;
    let known = if known > now { known } else { 0.0 };
    match (known > 0.0, reported > 0.0) {
        (true, true) => known.min(reported),
        (true, false) => known,
        _ => reported,
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
