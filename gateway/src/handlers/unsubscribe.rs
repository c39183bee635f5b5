//! `rpc.unsubscribe {jobId}`: every request of this socket waiting on the
//! job is answered with -32012 (unsubscribed) and the socket stops
//! watching it. A job this socket does not watch is not found, as another
//! user's would be.

use serde_json::json;

use super::{job_id_param, owned_job, BuiltIn};
use crate::protocol::{ErrorCode, Request, RpcError};
use crate::session::Call;

/// `rpc.unsubscribe`.
pub(crate) const METHOD: BuiltIn = BuiltIn {
    name: "rpc.unsubscribe",
    handle,
};

fn handle(mut call: Call<'_>, req: Request) {
    let params = req.params_value();
    let about = job_id_param(params.as_ref()).ok();
    let result = owned_job(params.as_ref(), call.owner()).and_then(|job| {
        let released = call.release_waiters(&job.id, || {
            RpcError::new(ErrorCode::Unsubscribed).data(json!({ "jobId": job.id }))
        });
        if released == 0 {
            return Err(RpcError::not_found(&job.id));
        }
        Ok(json!({ "jobId": job.id, "unsubscribed": released }))
    });
    call.answer(about.as_deref(), result);
}
