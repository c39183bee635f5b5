//! The worker's one script call, `finishJobs` or `fetchJobs`: its
//! arguments (the worker's settings, the outcomes to settle, how many jobs
//! to fetch and their lock tokens) and what its packed reply says.

use super::outcome::Outcome;
use super::reply::{parse_reply, Fetched};
use super::WorkerOptions;
use crate::error::{Result, ScriptCode};
use crate::queue::Queue;
use crate::script;
use crate::time::now_ms;

/// The script call that settles `batch` and fetches up to `want` jobs,
/// their lock tokens numbered from `token_start`: `finishJobs` when there
/// are outcomes, else `fetchJobs`.
pub(super) fn script_call(
    queue: &Queue,
    opts: &WorkerOptions,
    token_prefix: &str,
    token_start: u64,
    batch: &[Outcome],
    want: usize,
) -> script::Invocation {
    let k = queue.keys();
    let mut call = if batch.is_empty() {
        script::FETCH_JOBS.call().keys(k.core())
    } else {
        script::FINISH_JOBS
            .call()
            .keys(k.core())
            .key(k.completed())
            .key(k.failed())
    }
    .arg(k.base())
    .arg(now_ms())
    .arg(want);
    let limiter = opts.limiter;
    call.push_arg(token_prefix);
    call.push_arg(token_start);
    call.push_arg(opts.lock_duration.as_millis() as u64);
    call.push_arg(limiter.map(|l| l.max.to_string()).unwrap_or_default());
    call.push_arg(
        limiter
            .map(|l| l.duration.as_millis().to_string())
            .unwrap_or_default(),
    );
    call.push_arg(opts.name.as_deref().unwrap_or(""));
    if !batch.is_empty() {
        call.push_arg(
            opts.metrics_max_data_points
                .map(|n| n.to_string())
                .unwrap_or_default(),
        );
        call.push_arg(if opts.publish_results { "1" } else { "" });
        call.push_arg(batch.len());
        for o in batch {
            o.push_args(&mut call);
        }
    }
    call
}

/// Reads a `finishJobs` or `fetchJobs` reply: the jobs fetched, and per
/// outcome of `batch` whether it was recorded.
pub(super) fn read_reply(
    queue: &Queue,
    token_prefix: &str,
    token_start: u64,
    batch: &[Outcome],
    packed: &[u8],
) -> Result<Fetched> {
    let mut n = token_start;
    let mut tokens = || {
        let t = format!("{token_prefix}{n}");
        n += 1;
        t
    };
    let (codes, mut fetched) = parse_reply(queue, packed, !batch.is_empty(), &mut tokens)?;
    for (o, code) in batch.iter().zip(codes) {
        let refused = ScriptCode::from_reply(code);
        if let Some(code) = refused {
            tracing::warn!(queue = queue.name(), job_id = %o.job_id, %code, "could not record the job's result");
        }
        fetched.recorded.push(refused.is_none());
    }
    Ok(fetched)
}
