//! What happened to one attempt, encoded as the ten per-job arguments of
//! `finishJobs-12.lua`.

use serde_json::Value;

use super::backoff::{decide, Retry};
use super::{JobError, WorkerOptions};
use crate::job::Job;
use crate::options::{KeepJobs, KeepPolicy};
use crate::script::Invocation;

/// How the attempt ends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Completed {
        returnvalue: String,
    },
    Failed {
        reason: String,
    },
    /// Retry after `delay` ms.
    Delayed {
        reason: String,
        delay: i64,
    },
    /// Retry now (LPUSH, or RPUSH for lifo jobs).
    Retry {
        reason: String,
        lifo: bool,
    },
    /// Give the job back untouched (worker closing); no attempt counted.
    HandBack,
    /// The handler moved the job to waiting-children: nothing to settle.
    WaitingChildren,
}

/// One finished attempt, ready to be settled by the next script call.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) job_id: String,
    pub(crate) token: String,
    pub(crate) kind: Kind,
    stacktrace: Option<String>,
    keep: KeepPolicy,
    attempts: i64,
    /// Attempts made once this one is recorded (for watchers).
    pub(crate) attempts_made: i64,
    /// Where the end is also published (the job's `replyTo`, when the
    /// worker publishes results), else "".
    reply_to: String,
}

impl Outcome {
    /// Decides, as BullMQ's worker does, between completing, retrying (now or
    /// after a backoff) and failing for good.
    pub(crate) fn decide(
        job: &Job,
        token: String,
        result: Result<Value, JobError>,
        opts: &WorkerOptions,
    ) -> Self {
        let attempts = job.opts.attempts.unwrap_or(0);
        let attempts_made = job.attempts_made + 1;
        let reply_to = match (&job.opts.reply_to, opts.publish_results) {
            (Some(channel), true) => channel.clone(),
            _ => String::new(),
        };
        match result {
            Err(err) if err.waiting_children => Outcome {
                job_id: job.id.clone(),
                token,
                kind: Kind::WaitingChildren,
                stacktrace: None,
                keep: KeepPolicy::default(),
                attempts,
                attempts_made,
                reply_to: String::new(),
            },
            Ok(value) => Outcome {
                job_id: job.id.clone(),
                token,
                kind: Kind::Completed {
                    returnvalue: value.to_string(),
                },
                stacktrace: None,
                keep: keep_policy(
                    job.opts.remove_on_complete.as_ref(),
                    opts.remove_on_complete.as_ref(),
                ),
                attempts,
                attempts_made,
                reply_to,
            },
            Err(err) => {
                let mut stack = job.stacktrace.clone();
                stack.push(err.stack_entry());
                match job.opts.stack_trace_limit {
                    Some(0) => stack.clear(),
                    Some(n) if n > 0 => {
                        let n = n as usize;
                        if stack.len() > n {
                            stack.drain(..stack.len() - n);
                        }
                    }
                    _ => {}
                }
                let reason = err.message.clone();
                let kind = match decide(job, &err, opts.backoff_strategy.as_ref()) {
                    Retry::No => Kind::Failed { reason },
                    Retry::Now => Kind::Retry {
                        reason,
                        lifo: job.opts.lifo,
                    },
                    Retry::After(delay) => Kind::Delayed { reason, delay },
                };
                Outcome {
                    job_id: job.id.clone(),
                    token,
                    kind,
                    stacktrace: Some(Value::from(stack).to_string()),
                    keep: keep_policy(
                        job.opts.remove_on_fail.as_ref(),
                        opts.remove_on_fail.as_ref(),
                    ),
                    attempts,
                    attempts_made,
                    reply_to,
                }
            }
        }
    }

    /// Hands a job back to `wait` without counting an attempt.
    pub(crate) fn hand_back(job_id: String, token: String) -> Self {
        Outcome {
            job_id,
            token,
            kind: Kind::HandBack,
            stacktrace: None,
            keep: KeepPolicy::default(),
            attempts: 0,
            attempts_made: 0,
            reply_to: String::new(),
        }
    }

    /// Appends the ten arguments `finishJobs` reads for this outcome.
    pub(crate) fn push_args(&self, call: &mut Invocation) {
        let (kind, value, extra): (&str, &str, String) = match &self.kind {
            // the sixth value of an end is where to publish it as well
            Kind::Completed { returnvalue } => ("completed", returnvalue, self.reply_to.clone()),
            Kind::Failed { reason } => ("failed", reason, self.reply_to.clone()),
            Kind::Delayed { reason, delay } => ("delayed", reason, delay.to_string()),
            Kind::Retry { reason, lifo } => (
                "retry",
                reason,
                if *lifo { "RPUSH" } else { "LPUSH" }.to_string(),
            ),
            // never sent (the worker drops these), kept harmless if it were
            Kind::HandBack | Kind::WaitingChildren => ("handback", "", String::new()),
        };
        let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        call.push_arg(&self.job_id);
        call.push_arg(&self.token);
        call.push_arg(kind);
        call.push_arg(value);
        call.push_arg(self.stacktrace.as_deref().unwrap_or(""));
        call.push_arg(extra);
        call.push_arg(opt(self.keep.count));
        call.push_arg(opt(self.keep.age));
        call.push_arg(opt(self.keep.limit));
        call.push_arg(self.attempts);
    }
}

/// The job's own removeOnComplete/removeOnFail wins over the worker's;
/// neither means keep forever.
fn keep_policy(job: Option<&KeepJobs>, worker: Option<&KeepJobs>) -> KeepPolicy {
    job.or(worker).map(KeepJobs::policy).unwrap_or_default()
}
