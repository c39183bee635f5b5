//! `rpc.status {jobId}`: the job's state, progress, attempts, result or
//! error, and timestamps, read from its BullMQ hash.

use bullmq_wire::{JobState, Queue};
use serde_json::{json, Map, Value};

use super::{from_queue_error, job_id_param, owned_job, queue_of, BuiltIn};
use crate::ids::JobRef;
use crate::protocol::{Request, RpcError};
use crate::session::Call;

/// `rpc.status`.
pub(crate) const METHOD: BuiltIn = BuiltIn {
    name: "rpc.status",
    handle,
};

fn handle(call: Call<'_>, req: Request) {
    let params = req.params_value();
    let about = job_id_param(params.as_ref()).ok();
    let found = owned_job(params.as_ref(), call.owner())
        .and_then(|job| Ok((queue_of(&call.shared(), &job)?, job)));
    let (queue, job) = match found {
        Ok(found) => found,
        Err(e) => return call.answer(about.as_deref(), Err(e)),
    };
    if call.id().is_none() {
        return; // a status nobody reads
    }
    call.answer_later(job.id.clone(), run(queue, job));
}

/// Reads the job; an absent job is not found.
pub async fn run(queue: Queue, job: JobRef) -> Result<Value, RpcError> {
    let Some(j) = queue.get_job(&job.id).await.map_err(from_queue_error)? else {
        return Err(RpcError::not_found(&job.id));
    };
    let state = queue
        .get_job_state(&job.id)
        .await
        .map_err(from_queue_error)?;
    let mut out = Map::new();
    out.insert("jobId".into(), json!(job.id));
    out.insert("service".into(), json!(job.queue));
    out.insert("method".into(), json!(j.name));
    out.insert("state".into(), json!(state.as_str()));
    out.insert("progress".into(), j.progress.clone());
    out.insert("attemptsMade".into(), json!(j.attempts_made));
    out.insert("attempts".into(), json!(j.max_attempts()));
    match state {
        JobState::Completed => {
            out.insert(
                "result".into(),
                j.returnvalue.clone().unwrap_or(Value::Null),
            );
        }
        JobState::Failed => {
            out.insert(
                "error".into(),
                json!({ "failedReason": j.failed_reason.clone().unwrap_or_default(), "attemptsMade": j.attempts_made }),
            );
        }
        _ => {
            if let Some(reason) = &j.failed_reason {
                out.insert("lastError".into(), json!(reason));
            }
        }
    }
    out.insert(
        "timestamps".into(),
        json!({ "created": j.timestamp, "processed": j.processed_on, "finished": j.finished_on }),
    );
    Ok(Value::Object(out))
}
