//! How a handler fails a job: a retryable error, or one that fails the job
//! at once whatever attempts remain (BullMQ's `UnrecoverableError`).

use std::backtrace::{Backtrace, BacktraceStatus};
use std::fmt;
use std::panic::Location;

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
    /// Where the error was made (`#[track_caller]` constructors and `?`).
    location: Option<&'static Location<'static>>,
    /// The `source()` chain of the error it was made from, outermost first.
    causes: Vec<String>,
    /// A backtrace, where one was captured: by the constructors when
    /// `RUST_BACKTRACE` or `RUST_LIB_BACKTRACE` turns them on, or given with
    /// [`JobError::with_backtrace`].
    backtrace: Option<String>,
}

/// The backtrace of here, when the environment asks for them (formatted
/// only then: otherwise `Backtrace::capture` costs a cached flag read).
fn captured() -> Option<String> {
    let bt = Backtrace::capture();
    (bt.status() == BacktraceStatus::Captured).then(|| bt.to_string())
}

impl JobError {
    /// A failure that is retried while attempts remain.
    #[track_caller]
    pub fn new(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            stack: None,
            unrecoverable: false,
            waiting_children: false,
            location: Some(Location::caller()),
            causes: Vec::new(),
            backtrace: captured(),
        }
    }

    /// A failure that fails the job now (BullMQ's `UnrecoverableError`).
    #[track_caller]
    pub fn unrecoverable(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            stack: None,
            unrecoverable: true,
            waiting_children: false,
            location: Some(Location::caller()),
            causes: Vec::new(),
            backtrace: captured(),
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
            location: None,
            causes: Vec::new(),
            backtrace: None,
        }
    }

    /// Adds a stack trace or other detail for the job's `stacktrace`.
    pub fn with_stack(mut self, stack: impl Into<String>) -> Self {
        self.stack = Some(stack.into());
        self
    }

    /// Drops the location: for failures the worker makes itself (a timeout,
    /// a panic), where the library's own line would mislead.
    pub(crate) fn without_location(mut self) -> Self {
        self.location = None;
        self
    }

    /// Records a backtrace the handler's error carries (for example
    /// `anyhow::Error::backtrace()`), shown in the job's `stacktrace`;
    /// one that was not captured is ignored.
    pub fn with_backtrace(mut self, backtrace: &Backtrace) -> Self {
        if backtrace.status() == BacktraceStatus::Captured {
            self.backtrace = Some(backtrace.to_string());
        }
        self
    }

    /// Records `err`'s `source()` chain, shown in the job's `stacktrace`.
    pub fn with_causes(mut self, err: &(dyn std::error::Error + 'static)) -> Self {
        let mut next = err.source();
        while let Some(e) = next {
            self.causes.push(e.to_string());
            next = e.source();
        }
        self
    }

    /// What goes into the stacktrace list, in the shape of Node's
    /// `err.stack`: the error line, then where it was made and its causes
    /// (a stack given with [`JobError::with_stack`] is stored as is).
    pub(crate) fn stack_entry(&self) -> String {
        if let Some(s) = &self.stack {
            return s.clone();
        }
        let kind = if self.unrecoverable {
            "UnrecoverableError"
        } else {
            "Error"
        };
        let mut entry = format!("{kind}: {}", self.message);
        if let Some(l) = self.location {
            entry.push_str(&format!(
                "\n    at {}:{}:{}",
                l.file(),
                l.line(),
                l.column()
            ));
        }
        for cause in &self.causes {
            entry.push_str(&format!("\nCaused by: {cause}"));
        }
        if let Some(bt) = &self.backtrace {
            entry.push_str("\nBacktrace:\n");
            entry.push_str(bt.trim_end());
        }
        entry
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JobError {}

impl From<String> for JobError {
    #[track_caller]
    fn from(message: String) -> Self {
        JobError::new(message)
    }
}

impl From<&str> for JobError {
    #[track_caller]
    fn from(message: &str) -> Self {
        JobError::new(message)
    }
}

impl From<crate::Error> for JobError {
    #[track_caller]
    fn from(e: crate::Error) -> Self {
        JobError::new(e.to_string()).with_causes(&e)
    }
}

/// A payload that does not decode fails the job at once: every retry would
/// read the same bytes.
impl From<serde_json::Error> for JobError {
    #[track_caller]
    fn from(e: serde_json::Error) -> Self {
        JobError::unrecoverable(format!("invalid job data: {e}")).with_causes(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_captured_backtrace_is_stored_after_the_location_and_causes() {
        let e = JobError::new("boom").with_backtrace(&Backtrace::force_capture());
        let entry = e.stack_entry();
        assert!(entry.starts_with("Error: boom\n    at "), "{entry}");
        let bt = entry.split_once("\nBacktrace:\n").map(|(_, bt)| bt);
        assert!(bt.is_some_and(|bt| bt.contains("job_error")), "{entry}");
    }

    #[test]
    fn a_backtrace_not_captured_changes_nothing() {
        // `new` captures one itself only when RUST_BACKTRACE asks for it
        let e = JobError::new("boom");
        let before = e.stack_entry();
        assert_eq!(
            e.with_backtrace(&Backtrace::disabled()).stack_entry(),
            before
        );
    }
}
