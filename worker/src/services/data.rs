//! Queue `data`: the PRD's `data.processHeavyTask`, a stand-in for long
//! data processing that reports its stages as progress.

use std::time::Duration;

use bullmq_wire::JobError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::registry::{Registry, RegistryError};
use crate::Call;

#[derive(Debug, Deserialize)]
struct Params {
    input: Value,
    /// Simulated work per stage, ms (default 100).
    #[serde(default = "default_stage_ms")]
    stage_ms: u64,
}

fn default_stage_ms() -> u64 {
    100
}

/// `data.processHeavyTask {input}` -> `{processed, bytes, checksum}`.
pub fn registry() -> Result<Registry, RegistryError> {
    let mut r = Registry::new();
    r.typed("data.processHeavyTask", process)?;
    Ok(r)
}

async fn process(mut call: Call, p: Params) -> Result<Value, JobError> {
    let text = p.input.to_string();
    for (i, stage) in ["load", "transform", "store"].iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(p.stage_ms)).await;
        call.progress(json!({ "percent": (i + 1) * 100 / 3, "stage": stage }))
            .await?;
    }
    let checksum = text.bytes().fold(0u32, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    Ok(json!({ "processed": p.input, "bytes": text.len(), "checksum": checksum }))
}
