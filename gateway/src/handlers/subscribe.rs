//! `rpc.subscribe {jobId}`: re-attach to a job after a reconnect, on any
//! gateway. The subscription is confirmed before the job is read, so an
//! end that happens in between is still delivered; a job that has already
//! ended is answered at once. The answer is the job's end, with this
//! request's id, exactly like the original call's would have been.
//! A job of a service this gateway does not serve is refused like a call
//! to that service (-32601), and a job this socket is still adding counts
//! as existing. (`rpc.unsubscribe` is `unsubscribe.rs`.)

use tokio::sync::mpsc;

use super::{from_notify_error, job_id_param, owned_job, BuiltIn};
use crate::ids::JobRef;
use crate::notifier::{JobEvent, Notifier, SessionId, Snapshot};
use crate::protocol::{Request, RpcError};
use crate::session::{add_finished, AddWaiter, Call};

/// `rpc.subscribe`.
pub(crate) const METHOD: BuiltIn = BuiltIn {
    name: "rpc.subscribe",
    handle,
};

fn handle(call: Call<'_>, req: Request) {
    let params = req.params_value();
    let about = job_id_param(params.as_ref()).ok();
    let job = match owned_job(params.as_ref(), call.owner()) {
        Ok(job) => job,
        Err(e) => return call.answer(about.as_deref(), Err(e)),
    };
    let shared = call.shared();
    if !shared.queues.contains_key(&job.queue) {
        return call.answer(
            about.as_deref(),
            Err(RpcError::method_not_found(&job.queue)),
        );
    }
    let notifier = shared.notifier.clone();
    let adding = call.add_in_flight(&job.id);
    let watched = job.clone();
    call.watch(&job, move |session, tx| {
        run(notifier, watched, session, tx, adding)
    });
}

/// Watches the job, then reads it; an absent job is not found, unless its
/// add (`adding`) was in flight: then it is read again once that is done.
pub async fn run(
    notifier: Notifier,
    job: JobRef,
    session: SessionId,
    tx: mpsc::Sender<JobEvent>,
    adding: Option<AddWaiter>,
) -> Result<Option<Snapshot>, RpcError> {
    notifier
        .watch(job.clone(), session, tx, false)
        .await
        .map_err(from_notify_error)?;
    let mut snapshot = notifier.read(&job).await.map_err(from_notify_error)?;
    if let (false, Some(adding)) = (snapshot.exists(), adding) {
        add_finished(adding).await;
        snapshot = notifier.read(&job).await.map_err(from_notify_error)?;
    }
    if !snapshot.exists() {
        return Err(RpcError::not_found(&job.id));
    }
    Ok(Some(snapshot))
}
