//! How a handler fails a job: a retryable error, or one that fails the job
//! at once whatever attempts remain (BullMQ's `UnrecoverableError`).

use std::fmt;

/// A handler's failure.
///
/// Which failures are retried (while the job has attempts left):
/// - [`JobError::new`], and conversions from `String`, `&str` and
///   [`crate::Error`] (Redis and other passing troubles): retried.
/// - [`JobError::unrecoverable`]: the job fails now.
/// - a `serde_json::Error` (`?` on decoding the job's data): the job fails
///   now; a payload that does not decode will not decode on a retry either.
///   Build a [`JobError::new`] yourself to retry such errors.
/// - a handler that panics or exceeds its timeout: retried, with the reason
///   "handler panicked: ..." or "job timed out after N ms".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    /// Becomes the job's `failedReason`.
    pub message: String,
    /// Recorded in the job's `stacktrace` (the message when none is given).
    pub stack: Option<String>,
    /// No retry, whatever attempts remain.
    pub unrecoverable: bool,
    /// Not a failure: the job moved to waiting-children
    /// ([`JobError::waiting_children`]).
    pub(crate) waiting_children: bool,
}

impl JobError {
    /// A failure that is retried while attempts remain.
    pub fn new(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            stack: None,
            unrecoverable: false,
            waiting_children: false,
        }
    }

    /// A failure that fails the job now (BullMQ's `UnrecoverableError`).
    pub fn unrecoverable(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            stack: None,
            unrecoverable: true,
            waiting_children: false,
        }
    }

    /// What a handler returns after [`Job::move_to_waiting_children`]
    /// moved its job (BullMQ's `WaitingChildrenError`): the worker lets
    /// the job go without settling it; it runs again when its children
    /// are done.
    ///
    /// [`Job::move_to_waiting_children`]: crate::Job::move_to_waiting_children
    pub fn waiting_children() -> Self {
        JobError {
            message: "waiting for children".into(),
            stack: None,
            unrecoverable: false,
            waiting_children: true,
        }
    }

    /// Adds a stack trace or other detail for the job's `stacktrace`.
    pub fn with_stack(mut self, stack: impl Into<String>) -> Self {
        self.stack = Some(stack.into());
        self
    }

    /// What goes into the stacktrace list, as BullMQ stores `err.stack`.
    pub(crate) fn stack_entry(&self) -> String {
        match &self.stack {
            Some(s) => s.clone(),
            None if self.unrecoverable => format!("UnrecoverableError: {}", self.message),
            None => format!("Error: {}", self.message),
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JobError {}

impl From<String> for JobError {
    fn from(message: String) -> Self {
        JobError::new(message)
    }
}

impl From<&str> for JobError {
    fn from(message: &str) -> Self {
        JobError::new(message)
    }
}

impl From<crate::Error> for JobError {
    fn from(e: crate::Error) -> Self {
        JobError::new(e.to_string())
    }
}

/// A payload that does not decode fails the job at once: every retry would
/// read the same bytes.
impl From<serde_json::Error> for JobError {
    fn from(e: serde_json::Error) -> Self {
        JobError::unrecoverable(format!("invalid job data: {e}"))
    }
}
