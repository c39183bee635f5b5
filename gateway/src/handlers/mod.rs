//! One file per method: each owns its method end to end (its name, its
//! params, its Redis work, and how it is answered, through the session's
//! `Call`). Handlers never touch the socket; the session (`session/`) owns
//! ordering and delivery. A new built-in is a new file with its
//! `METHOD` entry, listed in `BUILT_INS` below.

pub mod auth;
pub mod cancel;
pub mod options;
pub mod status;
pub mod submit;
pub mod subscribe;
pub mod unsubscribe;

use bullmq_wire::Queue;
use serde_json::Value;

use crate::ids::{JobRef, Owner};
use crate::notifier::NotifyError;
use crate::protocol::{Request, RpcError};
use crate::session::Call;
use crate::state::Shared;

/// A built-in method: its name and its handler.
pub(crate) struct BuiltIn {
    /// The method name (`rpc.*`).
    pub name: &'static str,
    /// Answers the request, now or from a task.
    pub handle: fn(Call<'_>, Request),
}

/// The built-in methods; `dispatch::route` looks names up here.
pub(crate) const BUILT_INS: &[BuiltIn] = &[
    subscribe::METHOD,
    unsubscribe::METHOD,
    status::METHOD,
    cancel::METHOD,
    auth::METHOD,
];

/// The queue of the caller's job, or not-found when the gateway does not
/// serve it.
pub(crate) fn queue_of(shared: &Shared, job: &JobRef) -> Result<Queue, RpcError> {
    shared
        .queues
        .get(&job.queue)
        .map(|b| b.queue().clone())
        .ok_or_else(|| RpcError::not_found(&job.id))
}

/// Maps a library error: retryable ones mean Redis is unavailable (the
/// call was not accepted; or, for an add that too few replicas confirmed,
/// accepted by the master only, which the error's data says), input errors
/// are the client's, a job that is gone (removed between a read and an
/// operation on it) is not found, the rest is ours.
pub fn from_queue_error(e: bullmq_wire::Error) -> RpcError {
    if let bullmq_wire::Error::NotReplicated { acked, wanted } = e {
        tracing::warn!(
            acked,
            wanted,
            "job added on the master, not replicated in time"
        );
        return RpcError::not_replicated(format_args!(
            "the job reached the master but {acked} of {wanted} replicas confirmed it in time; \
             it will run: retry with the same jobId to wait for it"
        ));
    }
    if e.is_retryable() {
        tracing::warn!(cause = %e, "redis unavailable");
        return RpcError::redis_unavailable();
    }
    match e {
        bullmq_wire::Error::InvalidInput { .. } => RpcError::invalid_params(e),
        bullmq_wire::Error::JobNotFound { job_id, .. } => RpcError::not_found(&job_id),
        other => {
            tracing::error!(cause = %other, "unexpected queue error");
            RpcError::internal()
        }
    }
}

/// Notifier failures all mean Redis could not be used.
pub fn from_notify_error(e: NotifyError) -> RpcError {
    tracing::warn!(cause = %e, "notifier unavailable");
    RpcError::redis_unavailable()
}

/// Reads the `jobId` of a built-in's params: `{"jobId": "..."}` or `["..."]`.
pub fn job_id_param(params: Option<&Value>) -> Result<String, RpcError> {
    let v = match params {
        Some(Value::Object(m)) => m.get("jobId"),
        Some(Value::Array(a)) => a.first(),
        _ => None,
    };
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(RpcError::invalid_params("expected {\"jobId\": string}")),
    }
}

/// The caller's job named by the params, or not-found (an unknown id and
/// another user's id are answered the same way).
pub fn owned_job(params: Option<&Value>, owner: &Owner) -> Result<JobRef, RpcError> {
    let id = job_id_param(params)?;
    JobRef::owned_by(&id, owner).ok_or_else(|| RpcError::not_found(&id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_job_ids_and_hides_foreign_ones() {
        let alice = Owner::of("alice");
        let mine = JobRef::for_call("demo", &alice, Some("k")).unwrap();
        assert_eq!(
            owned_job(Some(&json!({"jobId": mine.id})), &alice).unwrap(),
            mine
        );
        assert_eq!(owned_job(Some(&json!([mine.id])), &alice).unwrap(), mine);
        let e = owned_job(Some(&json!({"jobId": mine.id})), &Owner::of("bob")).unwrap_err();
        assert_eq!(e, RpcError::not_found(&mine.id));
        assert_eq!(
            owned_job(Some(&json!({"jobId": "42"})), &alice)
                .unwrap_err()
                .code,
            -32003
        );
        assert_eq!(
            owned_job(Some(&json!({"id": 1})), &alice).unwrap_err().code,
            -32602
        );
        assert_eq!(owned_job(None, &alice).unwrap_err().code, -32602);
    }

    #[test]
    fn an_add_on_the_master_only_is_retryable_and_enqueued() {
        let e = from_queue_error(bullmq_wire::Error::NotReplicated {
            acked: 0,
            wanted: 1,
        });
        assert_eq!(e.code, -32004);
        assert_eq!(e.data, Some(json!({"retryable": true, "enqueued": true})));
        assert!(e.message.contains("same jobId"), "{}", e.message);
    }

    #[test]
    fn a_job_gone_before_the_operation_is_not_found() {
        let e = bullmq_wire::Error::JobNotFound {
            queue: "demo".into(),
            job_id: "demo.x.k".into(),
        };
        assert_eq!(from_queue_error(e), RpcError::not_found("demo.x.k"));
    }
}
