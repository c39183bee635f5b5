//! The library's error type, and the status codes our Lua scripts return.

use std::fmt;

/// Everything that can go wrong in a queue, worker or events call.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Redis could not be reached or answered with an error. Usually
    /// retryable: see [`Error::is_retryable`].
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Input rejected before anything was written to Redis.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was rejected (`job id`, `priority`, ...).
        what: &'static str,
        /// Why, in words a caller can act on.
        reason: String,
    },
    /// No job with this id exists in the queue.
    #[error("no job {job_id} in queue {queue}")]
    JobNotFound {
        /// The queue's name.
        queue: String,
        /// The id asked for.
        job_id: String,
    },
    /// A script refused the operation with one of BullMQ's status codes.
    #[error("{command} refused job {job_id}: {code}")]
    Script {
        /// Which status.
        code: ScriptCode,
        /// The job the command was about.
        job_id: String,
        /// The command that refused.
        command: &'static str,
    },
    /// Redis answered with data this library cannot read (a job hash written
    /// by something that is not BullMQ, for example).
    #[error("unexpected reply from redis for {context}: {detail}")]
    Protocol {
        /// What was being read.
        context: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// An add was written on the master but fewer replicas than asked for
    /// ([`ReplicaAcks`](crate::ReplicaAcks)) confirmed it in time: a
    /// failover now could lose it. Adding again with the same job id is
    /// safe and waits again.
    #[error("the write reached the master but {acked} of {wanted} replicas confirmed it in time; retry with the same job id")]
    NotReplicated {
        /// Replicas that confirmed.
        acked: u32,
        /// Replicas asked for.
        wanted: u32,
    },
    /// The queue or worker was closed.
    #[error("closed")]
    Closed,
    /// A wait (such as `wait_until_finished`) ran past its deadline.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
}

impl Error {
    /// True when retrying the same call later may succeed: Redis was
    /// unreachable, restarting or loading, the connection dropped, or a
    /// failover refused the command unexecuted (`MOVED`, `ASK`, `TRYAGAIN`,
    /// `CLUSTERDOWN`, `MASTERDOWN`, `READONLY`).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                    || matches!(
                        e.kind(),
                        redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
                    )
                    || crate::connection::not_executed(e)
                    || crate::connection::is_read_only(e)
                    || e.to_string().contains("LOADING")
            }
            Error::NotReplicated { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn protocol(context: &'static str, detail: impl Into<String>) -> Self {
        Error::Protocol {
            context,
            detail: detail.into(),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Turns a script's negative status into a typed error; other replies pass.
pub(crate) fn check(code: i64, command: &'static str, job_id: &str) -> Result<i64> {
    match ScriptCode::from_reply(code) {
        None => Ok(code),
        Some(code) => Err(Error::Script {
            code,
            job_id: job_id.to_string(),
            command,
        }),
    }
}

/// Like [`check`] for a command on one job of `queue`: a job that does not
/// exist is [`Error::JobNotFound`].
pub(crate) fn check_job(
    queue: &str,
    code: i64,
    command: &'static str,
    job_id: &str,
) -> Result<i64> {
    match ScriptCode::from_reply(code) {
        Some(ScriptCode::JobNotExist) => Err(Error::JobNotFound {
            queue: queue.to_string(),
            job_id: job_id.to_string(),
        }),
        _ => check(code, command, job_id),
    }
}

/// Negative status codes of BullMQ's scripts (`src/enums/error-code.ts`),
/// which ours return with the same meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptCode {
    /// -1: the job does not exist.
    JobNotExist,
    /// -2: the job has no lock (it stalled or was never fetched).
    JobLockNotExist,
    /// -3: the job is not in the state the command needs.
    JobNotInState,
    /// -4: the job still has pending children.
    JobPendingChildren,
    /// -5: the parent job does not exist.
    ParentJobNotExist,
    /// -6: another worker holds the job's lock.
    JobLockMismatch,
    /// -7: the job exists and another parent, which still exists, holds it
    /// (BullMQ's "parent job cannot be replaced").
    ParentJobCannotBeReplaced,
    /// -8: the job is the current iteration of a job scheduler.
    JobBelongsToJobScheduler,
    /// -9: the job has failed children.
    JobHasFailedChildren,
    /// -10: a cron scheduler's next iteration id is taken by a job that is
    /// active or finished.
    SchedulerJobIdCollision,
    /// -11: an `every` scheduler found no free slot in the next 32.
    SchedulerJobSlotsBusy,
    /// Any other negative code.
    Other(i64),
}

impl ScriptCode {
    /// Maps a script's negative reply to its meaning; `None` for success codes.
    pub fn from_reply(code: i64) -> Option<Self> {
        Some(match code {
            c if c >= 0 => return None,
            -1 => ScriptCode::JobNotExist,
            -2 => ScriptCode::JobLockNotExist,
            -3 => ScriptCode::JobNotInState,
            -4 => ScriptCode::JobPendingChildren,
            -5 => ScriptCode::ParentJobNotExist,
            -6 => ScriptCode::JobLockMismatch,
            -7 => ScriptCode::ParentJobCannotBeReplaced,
            -8 => ScriptCode::JobBelongsToJobScheduler,
            -9 => ScriptCode::JobHasFailedChildren,
            -10 => ScriptCode::SchedulerJobIdCollision,
            -11 => ScriptCode::SchedulerJobSlotsBusy,
            c => ScriptCode::Other(c),
        })
    }
}

impl fmt::Display for ScriptCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ScriptCode::JobNotExist => "the job does not exist",
            ScriptCode::JobLockNotExist => {
                "the job is not locked (it stalled or was never fetched)"
            }
            ScriptCode::JobNotInState => "the job is not in the state this needs",
            ScriptCode::JobPendingChildren => "the job still has children to finish",
            ScriptCode::ParentJobNotExist => "its parent job does not exist",
            ScriptCode::JobLockMismatch => "another worker holds the job's lock",
            ScriptCode::ParentJobCannotBeReplaced => {
                "job already belongs to another parent (parent job cannot be replaced)"
            }
            ScriptCode::JobBelongsToJobScheduler => {
                "the job is a job scheduler's current iteration"
            }
            ScriptCode::JobHasFailedChildren => "the job has failed children",
            ScriptCode::SchedulerJobIdCollision => {
                "the scheduler's next job id is taken by an active or finished job"
            }
            ScriptCode::SchedulerJobSlotsBusy => "the scheduler's next 32 slots are all taken",
            ScriptCode::Other(c) => return write!(f, "unknown script status {c}"),
        };
        f.write_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_bullmq_codes() {
        assert_eq!(ScriptCode::from_reply(0), None);
        assert_eq!(ScriptCode::from_reply(1), None);
        assert_eq!(
            ScriptCode::from_reply(-2),
            Some(ScriptCode::JobLockNotExist)
        );
        assert_eq!(
            ScriptCode::from_reply(-8),
            Some(ScriptCode::JobBelongsToJobScheduler)
        );
        assert_eq!(ScriptCode::from_reply(-42), Some(ScriptCode::Other(-42)));
    }

    #[test]
    fn failover_refusals_are_retryable_and_other_server_errors_are_not() {
        use redis::{ErrorKind, ServerErrorKind as K};
        let server = |kind: K, code: &'static str| {
            Error::Redis(redis::RedisError::from((
                ErrorKind::Server(kind),
                code,
                "9263 127.0.0.1:7000".to_string(),
            )))
        };
        for (kind, code) in [
            (K::Moved, "MOVED"),
            (K::Ask, "ASK"),
            (K::TryAgain, "TRYAGAIN"),
            (K::ClusterDown, "CLUSTERDOWN"),
            (K::MasterDown, "MASTERDOWN"),
        ] {
            assert!(server(kind, code).is_retryable(), "{code}");
        }
        assert!(!server(K::CrossSlot, "CROSSSLOT").is_retryable());
        assert!(!server(K::NoScript, "NOSCRIPT").is_retryable());
    }
}
