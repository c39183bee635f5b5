//! `rpc.subscribe {jobId}`: re-attach to a job after a reconnect, on any
//! gateway. The subscription is confirmed before the job is read, so an
//! end that happens in between is still delivered; a job that has already
//! ended is answered at once. The answer is the job's end, with this
//! request's id, exactly like the original call's would have been.
//! (`rpc.unsubscribe` is `unsubscribe.rs`.)

use tokio::sync::mpsc;

use super::{from_notify_error, job_id_param, owned_job, BuiltIn};
use crate::ids::JobRef;
use crate::notifier::{JobEvent, Notifier, SessionId, Snapshot};
use crate::protocol::{Request, RpcError};
use crate::session::Call;

/// `rpc.subscribe`.
pub(crate) const METHOD: BuiltIn = BuiltIn {
    name: "rpc.subscribe",
    handle,
};

fn handle(call: Call<'_>, req: Request) {
    let about = job_id_param(req.params.as_ref()).ok();
    let job = match owned_job(req.params.as_ref(), call.owner()) {
        Ok(job) => job,
        Err(e) => return call.answer(about.as_deref(), Err(e)),
    };
    let notifier = call.shared().notifier.clone();
    let watched = job.clone();
    call.watch(&job, move |session, tx| run(notifier, watched, session, tx));
}

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
