//! The retry decision and backoff delays, computed by the worker as BullMQ's
//! `Job.shouldRetryJob` and `Backoffs` do.

use rand::Rng as _;

use crate::job::Job;
use crate::options::millis::to_ms_i64;
use crate::options::Backoff;
use crate::worker::{BackoffStrategy, JobError};

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Fail the job for good.
    No,
    /// Back to `wait` now.
    Now,
    /// Back after this many ms.
    After(i64),
}

/// Retry while `attemptsMade + 1 < attempts` and the error is recoverable;
/// the delay comes from the job's backoff, a custom strategy returning None
/// meaning "do not retry".
pub(crate) fn decide(job: &Job, err: &JobError, custom: Option<&BackoffStrategy>) -> Retry {
    let attempts = job.opts.attempts.unwrap_or(0);
    if err.unrecoverable || job.attempts_made + 1 >= attempts {
        return Retry::No;
    }
    let attempt = job.attempts_made + 1;
    let delay = match &job.opts.backoff {
        None => 0,
        Some(Backoff::Fixed { delay, jitter }) => jittered(to_ms_i64(*delay), *jitter),
        Some(Backoff::Exponential { delay, jitter }) => {
            let first = to_ms_i64(*delay) as f64;
            let max = (2f64.powi((attempt - 1).clamp(0, 62) as i32) * first).round() as i64;
            jittered(max, *jitter)
        }
        Some(Backoff::Custom { kind, .. }) => match custom {
            Some(strategy) => match strategy(attempt, kind, err, job) {
                Some(d) => to_ms_i64(d),
                None => return Retry::No,
            },
            None => {
                tracing::warn!(job_id = %job.id, backoff = %kind, "unknown backoff strategy and no custom strategy; failing the job");
                return Retry::No;
            }
        },
    };
    if delay > 0 {
        Retry::After(delay)
    } else {
        Retry::Now
    }
}

/// `floor(rand * delay * jitter + delay * (1 - jitter))`.
fn jittered(delay: i64, jitter: Option<f64>) -> i64 {
    match jitter {
        Some(j) if j > 0.0 => {
            let d = delay as f64;
            (rand::rng().random::<f64>() * d * j + d * (1.0 - j)).floor() as i64
        }
        _ => delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..200 {
            let d = jittered(1000, Some(0.5));
            assert!((500..=1000).contains(&d), "{d}");
        }
        assert_eq!(jittered(1000, None), 1000);
        assert_eq!(jittered(1000, Some(0.0)), 1000);
    }
}
