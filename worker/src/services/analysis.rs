//! Queue `analysis`: the PRD's `analysis.runModel`, a stand-in for model
//! inference with percentage progress.

use std::time::Duration;

use bullmq_wire::JobError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::registry::{Registry, RegistryError};
use crate::Call;

#[derive(Debug, Deserialize)]
struct Params {
    data: Value,
    /// Simulated inference time, ms (default 300).
    #[serde(default = "default_ms")]
    ms: u64,
}

fn default_ms() -> u64 {
    300
}

/// `analysis.runModel {data}` -> `{model, input, score}`.
pub fn registry() -> Result<Registry, RegistryError> {
    let mut r = Registry::new();
    r.typed("analysis.runModel", run_model)?;
    Ok(r)
}

async fn run_model(mut call: Call, p: Params) -> Result<Value, JobError> {
    for percent in [25, 50, 75, 100] {
        tokio::time::sleep(Duration::from_millis(p.ms / 4)).await;
        call.progress(json!(percent)).await?;
    }
    let text = p.data.to_string();
    let score = (text.len() % 100) as f64 / 100.0;
    Ok(json!({ "model": "demo-v1", "input": p.data, "score": score }))
}
