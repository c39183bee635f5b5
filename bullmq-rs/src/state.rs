//! The states a job can be in, as BullMQ names them: the vocabulary the
//! keys, queue getters, jobs and events share (their keys are in `keys.rs`).

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A job's state, as `Job.getState()` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    /// In `wait`, ready to run.
    Waiting,
    /// In `active`, held by a worker.
    Active,
    /// In `delayed`, waiting for its time.
    Delayed,
    /// In `prioritized`, ready to run in priority order.
    Prioritized,
    /// In `completed`.
    Completed,
    /// In `failed`.
    Failed,
    /// A flow parent waiting for its children.
    WaitingChildren,
    /// Not found in any state.
    Unknown,
}

impl JobState {
    /// Every real state, in the order `getJobCounts()` lists them.
    pub const ALL: [JobState; 7] = [
        JobState::Active,
        JobState::Completed,
        JobState::Delayed,
        JobState::Failed,
        JobState::Prioritized,
        JobState::Waiting,
        JobState::WaitingChildren,
    ];

    /// The name BullMQ uses (`waiting`, `waiting-children`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Active => "active",
            JobState::Delayed => "delayed",
            JobState::Prioritized => "prioritized",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::WaitingChildren => "waiting-children",
            JobState::Unknown => "unknown",
        }
    }

    /// Lists (`wait`, `active`) rather than sorted sets.
    pub(crate) fn is_list(self) -> bool {
        matches!(self, JobState::Waiting | JobState::Active)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "waiting" | "wait" => JobState::Waiting,
            "active" => JobState::Active,
            "delayed" => JobState::Delayed,
            "prioritized" => JobState::Prioritized,
            "completed" => JobState::Completed,
            "failed" => JobState::Failed,
            "waiting-children" => JobState::WaitingChildren,
            "unknown" => JobState::Unknown,
            other => {
                return Err(Error::invalid(
                    "job state",
                    format!("{other:?} is not a job state"),
                ))
            }
        })
    }
}
