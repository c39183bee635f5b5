//! Queue `demo`: `echo` returns its data, `sleep` sleeps with progress,
//! `fail` fails its first attempts.

use std::time::Duration;

use bullmq_wire::JobError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::registry::{Registry, RegistryError};
use crate::Call;

#[derive(Debug, Deserialize)]
struct SleepParams {
    #[serde(default)]
    ms: u64,
    #[serde(default)]
    steps: u64,
}

#[derive(Debug, Deserialize)]
struct FailParams {
    #[serde(default)]
    times: i64,
}

/// `demo.echo`, `demo.sleep`, `demo.fail`.
pub fn registry() -> Result<Registry, RegistryError> {
    let mut r = Registry::new();
    r.handle("demo.echo", |call: Call| async move {
        Ok(json!({ "echo": call.params_json() }))
    })?;
    r.typed("demo.sleep", sleep)?;
    r.typed("demo.fail", |call: Call, p: FailParams| async move {
        let attempt = call.job().attempts_made + 1;
        if attempt <= p.times {
            return Err(JobError::new("demo failure"));
        }
        Ok(json!({ "attempts": attempt }))
    })?;
    Ok(r)
}

/// Sleeps `ms` in `steps` slices, reporting progress after each.
async fn sleep(mut call: Call, p: SleepParams) -> Result<Value, JobError> {
    let steps = p.steps.max(1);
    let slice = Duration::from_millis(p.ms / steps);
    for i in 1..=steps {
        tokio::select! {
            _ = tokio::time::sleep(slice) => {}
            _ = call.cancelled() => return Err(JobError::new("worker shutting down")),
        }
        if p.steps > 0 {
            call.progress(json!((100 * i) / steps)).await?;
        }
    }
    Ok(json!({ "slept": p.ms }))
}
