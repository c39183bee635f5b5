//! `rpc.cancel {jobId}`: removes a job that has not started (waiting,
//! prioritized or delayed); its watchers then get -32011 (job removed).
//! An active job is not interrupted: a worker holds it, and BullMQ gives
//! the gateway no way to stop it. It finishes or fails normally, and its
//! end is still delivered; the answer says so with `cancelled: false`.
//! A finished job is left as it is (`cancelled: false`).

use bullmq_wire::{JobState, Queue};
use serde_json::{json, Value};

use super::{from_queue_error, job_id_param, owned_job, queue_of, BuiltIn};
use crate::ids::JobRef;
use crate::protocol::{Request, RpcError};
use crate::session::Call;

/// `rpc.cancel`.
pub(crate) const METHOD: BuiltIn = BuiltIn {
    name: "rpc.cancel",
    handle,
};

fn handle(call: Call<'_>, req: Request) {
    let params = req.params_value();
    let about = job_id_param(params.as_ref()).ok();
    let found = owned_job(params.as_ref(), call.owner())
        .and_then(|job| Ok((queue_of(&call.shared(), &job)?, job)));
    match found {
        Ok((queue, job)) => call.answer_later(job.id.clone(), run(queue, job)),
        Err(e) => call.answer(about.as_deref(), Err(e)),
    }
}

/// What an active job's cancel answer says.
pub const ACTIVE_MESSAGE: &str =
    "the job is running in a worker and cannot be stopped; it will complete or fail normally";

/// Removes the job when it has not started.
pub async fn run(queue: Queue, job: JobRef) -> Result<Value, RpcError> {
    let state = queue
        .get_job_state(&job.id)
        .await
        .map_err(from_queue_error)?;
    let answer = |cancelled: bool, state: JobState, message: Option<&str>| {
        let mut v = json!({ "jobId": job.id, "cancelled": cancelled, "state": state.as_str() });
        if let Some(m) = message {
            v["message"] = json!(m);
        }
        v
    };
    match state {
        JobState::Unknown => Err(RpcError::not_found(&job.id)),
        JobState::Waiting
        | JobState::Prioritized
        | JobState::Delayed
        | JobState::WaitingChildren => {
            if queue.remove(&job.id).await.map_err(from_queue_error)? {
                Ok(answer(true, state, None))
            } else {
                // A worker took it between the two calls.
                Ok(answer(false, JobState::Active, Some(ACTIVE_MESSAGE)))
            }
        }
        JobState::Active => Ok(answer(false, state, Some(ACTIVE_MESSAGE))),
        JobState::Completed | JobState::Failed => {
            Ok(answer(false, state, Some("the job has already finished")))
        }
    }
}
