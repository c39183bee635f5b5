//! `rpc.status {jobId}`: the job's state, progress, attempts, result or
//! error, and timestamps, read from its BullMQ hash.

use bullmq_wire::{JobState, Queue};
use serde_json::{json, Map, Value};

use super::from_queue_error;
use crate::ids::JobRef;
use crate::protocol::RpcError;

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
