//! `service.method`: the call becomes a job named `method` on queue
//! `service`, with `params` as its data.
//!
//! Ordering: the job is watched before it is added (so a job that ends at
//! once is not missed), and when the client gave a `jobId` the job is read
//! after the add, because the add may have found an existing job (the
//! resend of an idempotent call), possibly already finished.

use std::future::Future;

use bullmq_wire::{AddBatcher, JobOptions, JsonText};
use serde_json::json;
use tokio::sync::mpsc;

use super::{from_notify_error, from_queue_error, options};
use crate::config::{JobPolicy, MethodConfig};
use crate::dispatch::Target;
use crate::ids::{JobRef, Owner};
use crate::notifier::{JobEvent, Notifier, SessionId, Snapshot};
use crate::protocol::{Request, RpcError};
use crate::session::{AddInFlight, Call};

/// Schema errors reported back, at most.
const MAX_SCHEMA_ERRORS: usize = 5;

/// Checks the call, then enqueues its job: watched for the request when
/// it has an id, fire-and-forget otherwise.
pub(crate) fn handle(mut call: Call<'_>, mut req: Request, target: Target<'_>) {
    let shared = call.shared();
    let prepared = prepare(
        &mut req,
        call.owner(),
        target.service,
        target.method,
        target.config,
        &shared.config.jobs,
    );
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(e) => return call.answer(None, Err(e)),
    };
    let Some(queue) = shared.queues.get(target.service).cloned() else {
        return call.answer(None, Err(RpcError::method_not_found(&req.method)));
    };
    let notifier = shared.notifier.clone();
    let job = prepared.job.clone();
    // a subscribe may name the job before its add is done only when the
    // client chose the id; a random id is known once the job is added
    let adding = prepared.read_after.then(|| call.begin_add(&job));
    if call.id().is_none() {
        return call.fire(run(queue, notifier, prepared, None, adding));
    }
    call.watch(&job, move |session, tx| {
        run(queue, notifier, prepared, Some((session, tx)), adding)
    });
}

/// A checked call, ready to enqueue.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The job to create (or find, for a resent `jobId`).
    pub job: JobRef,
    /// The job name: the method.
    pub name: String,
    /// The job data: the params as the client wrote them (`{}` when absent).
    pub data: JsonText,
    /// Options, clamped.
    pub opts: JobOptions,
    /// Read the job after adding it (the client gave a `jobId`).
    pub read_after: bool,
}

/// Checks params against the method's schema and builds the job.
pub fn prepare(
    req: &mut Request,
    owner: &Owner,
    service: &str,
    method: &str,
    config: Option<&MethodConfig>,
    policy: &JobPolicy,
) -> Result<Prepared, RpcError> {
    let job = JobRef::for_call(service, owner, req.job_id.as_deref())
        .map_err(RpcError::invalid_params)?;
    let data = req
        .params
        .take()
        .unwrap_or_else(|| JsonText::parse_or_string("{}"));
    if let Some(schema) = config.and_then(|c| c.schema.as_ref()) {
        let value = data.to_value();
        let errors: Vec<String> = schema
            .iter_errors(&value)
            .take(MAX_SCHEMA_ERRORS)
            .map(|e| {
                let path = e.instance_path().to_string();
                if path.is_empty() {
                    e.to_string()
                } else {
                    format!("{path}: {e}")
                }
            })
            .collect();
        if !errors.is_empty() {
            return Err(RpcError::invalid_params(&errors[0]).data(json!({ "errors": errors })));
        }
    }
    let opts = options::job_options(req.options.as_ref(), config, policy, job.id.clone())?;
    Ok(Prepared {
        job,
        name: method.to_string(),
        data,
        opts,
        read_after: req.job_id.is_some(),
    })
}

/// Enqueues the job; with `watch`, first subscribes the session to it.
/// Returns the job's state when it was read after the add. The add counts
/// as in flight on its socket until `adding` (if any) is dropped, when
/// this ends.
///
/// Not an `async fn`: that would copy its arguments into locals beside
/// themselves, and this future (one per call in flight) is moved into the
/// session's task set, so every byte of it is copied per call.
pub fn run(
    queue: AddBatcher,
    notifier: Notifier,
    mut call: Prepared,
    watch: Option<(SessionId, mpsc::Sender<JobEvent>)>,
    adding: Option<AddInFlight>,
) -> impl Future<Output = Result<Option<Snapshot>, RpcError>> + Send + 'static {
    let watching = watch.is_some();
    if watching {
        // published mode: workers also report on this gateway's channel
        call.opts.reply_to = notifier.reply_channel().map(str::to_string);
    }
    // the watch takes the job; a copy is kept only for the read after the
    // add (the client gave a jobId)
    let Prepared {
        job,
        name,
        data,
        opts,
        read_after,
    } = call;
    let (job, read_job) = if watching && read_after {
        (job.clone(), Some(job))
    } else {
        (job, None)
    };
    async move {
        let _adding = adding;
        if let Some((session, tx)) = watch {
            notifier
                .watch(job, session, tx, !read_after)
                .await
                .map_err(from_notify_error)?;
        }
        queue
            .add(&name, &data, opts)
            .await
            .map_err(from_queue_error)?;
        if let Some(job) = read_job {
            // rare: boxed, so that the common call's future does not carry
            // the read's state
            return Box::pin(async move { notifier.read(&job).await })
                .await
                .map(Some)
                .map_err(from_notify_error);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FileConfig, Services};
    use serde_json::Value;

    fn method_with_schema() -> MethodConfig {
        let file = FileConfig::from_value(json!({"services": {"s": {"methods": {"m": {
            "schema": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
        }}}}}))
        .unwrap();
        let mut config =
            crate::Config::new("redis://x", crate::auth::AuthConfig::hs256(b"k".to_vec()));
        config.services = Services::default();
        FileConfig::add_services(file.services, &mut config.services).unwrap();
        config.services.lookup("s", "m").unwrap().1.unwrap().clone()
    }

    fn request(params: Value, job_id: Option<&str>) -> Request {
        Request {
            id: None,
            method: "s.m".into(),
            params: Some(params.into()),
            job_id: job_id.map(str::to_string),
            options: None,
            ack: false,
        }
    }

    #[test]
    fn validates_params_against_the_schema() {
        let m = method_with_schema();
        let owner = Owner::of("u");
        let policy = JobPolicy::default();
        let prepare_call = |params: Value, job_id: Option<&str>| {
            prepare(
                &mut request(params, job_id),
                &owner,
                "s",
                "m",
                Some(&m),
                &policy,
            )
        };
        let ok = prepare_call(json!({"n": 1}), Some("k")).unwrap();
        assert_eq!(ok.name, "m");
        assert_eq!(ok.data.to_value(), json!({"n": 1}));
        assert!(ok.read_after);
        assert_eq!(ok.opts.job_id.as_deref(), Some(ok.job.id.as_str()));
        let err = prepare_call(json!({"n": "x"}), None).unwrap_err();
        assert_eq!(err.code, -32602);
        assert!(err.message.contains("/n"), "{}", err.message);
        let err = prepare_call(json!({}), None).unwrap_err();
        assert_eq!(err.data.unwrap()["errors"].as_array().unwrap().len(), 1);
        let err = prepare_call(json!({"n": 1}), Some("bad key")).unwrap_err();
        assert_eq!(err.code, -32602);
    }

    /// One `run` future per call in flight is moved into the session's
    /// task set and boxed: it was 4,320 bytes (an `async fn` copying its
    /// arguments, the add future holding the job twice), and each byte was
    /// copied several times per call.
    #[test]
    fn the_call_future_stays_small() {
        fn future_size<A, B, C, D, E, F>(_: fn(A, B, C, D, E) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        let size = future_size(run);
        assert!(size <= 1536, "submit::run's future is {size} bytes");
    }
}
