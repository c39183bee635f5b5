//! Built-in services, one file each: `demo` (try the runtime), and the
//! PRD's examples `data.processHeavyTask` and `analysis.runModel`.

pub mod analysis;
pub mod data;
pub mod demo;

use crate::registry::{Registry, RegistryError};

/// The names `worker` accepts on its command line.
pub const ALL: [&str; 3] = ["demo", "data", "analysis"];

/// The registry for one built-in service.
pub fn by_name(name: &str) -> Option<Result<Registry, RegistryError>> {
    match name {
        "demo" => Some(demo::registry()),
        "data" => Some(data::registry()),
        "analysis" => Some(analysis::registry()),
        _ => None,
    }
}
