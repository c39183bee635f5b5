//! A job's data read as the caller's own type: `job.data_as::<T>()`. A
//! payload that does not fit the type will not fit on a retry either, so the
//! error turns into an unrecoverable failure when a handler returns it
//! with `?`.

use serde::de::DeserializeOwned;

use super::Job;
use crate::worker::JobError;

/// The job's data does not deserialize into the type asked for.
#[derive(Debug, thiserror::Error)]
#[error("data of job {job_id} ({job_name}) does not fit {type_name}: {source}")]
pub struct DataError {
    /// The job id.
    pub job_id: String,
    /// The job name.
    pub job_name: String,
    /// The Rust type asked for.
    pub type_name: &'static str,
    /// What serde found wrong.
    #[source]
    pub source: serde_json::Error,
}

impl Job {
    /// The job's data as `T` (for the untyped case, read [`Job::data`]).
    /// The error fails the job without retries when a handler returns it
    /// with `?`.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, DataError> {
        T::deserialize(&self.data).map_err(|source| DataError {
            job_id: self.id.clone(),
            job_name: self.name.clone(),
            type_name: std::any::type_name::<T>(),
            source,
        })
    }
}

impl From<DataError> for JobError {
    fn from(e: DataError) -> Self {
        JobError::unrecoverable(e.to_string())
    }
}
