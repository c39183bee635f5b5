//! Where a job made by `Job::builder` (feature `testing`) keeps what its
//! handler reported, instead of Redis.

use std::sync::{Mutex, PoisonError};

use serde_json::Value;

/// What a handler reported on a job made by `Job::builder`.
#[derive(Debug, Default)]
pub struct Recorded {
    progress: Mutex<Vec<Value>>,
    logs: Mutex<Vec<String>>,
}

impl Recorded {
    /// Every progress reported, oldest first.
    #[cfg(feature = "testing")]
    pub fn progress(&self) -> Vec<Value> {
        self.progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every log line, oldest first.
    #[cfg(feature = "testing")]
    pub fn logs(&self) -> Vec<String> {
        self.logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn push_progress(&self, progress: Value) {
        self.progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(progress);
    }

    /// Records a line; returns how many lines the job holds.
    pub(crate) fn push_log(&self, line: &str) -> i64 {
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        logs.push(line.to_owned());
        i64::try_from(logs.len()).unwrap_or(i64::MAX)
    }
}
