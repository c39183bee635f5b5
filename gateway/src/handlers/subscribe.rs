//! `rpc.subscribe {jobId}`: re-attach to a job after a reconnect, on any
//! gateway. The subscription is confirmed before the job is read, so an
//! end that happens in between is still delivered; a job that has already
//! ended is answered at once. The answer is the job's end, with this
//! request's id, exactly like the original call's would have been.
//! `rpc.unsubscribe` is handled by the session, which owns the pending
//! requests it cancels.

use tokio::sync::mpsc;

use super::from_notify_error;
use crate::ids::JobRef;
use crate::notifier::{JobEvent, Notifier, SessionId, Snapshot};
use crate::protocol::RpcError;

/// Watches the job, then reads it; an absent job is not found.
pub async fn run(
    notifier: Notifier,
    job: JobRef,
    session: SessionId,
    tx: mpsc::Sender<JobEvent>,
) -> Result<Option<Snapshot>, RpcError> {
    notifier
        .watch(&job, session, tx, false)
        .await
        .map_err(from_notify_error)?;
    let snapshot = notifier.read(&job).await.map_err(from_notify_error)?;
    if !snapshot.exists() {
        return Err(RpcError::not_found(&job.id));
    }
    Ok(Some(snapshot))
}
