//! Scenarios shared by several test files, each taking the [`Deployment`]
//! it runs on (one server, a cluster, a Sentinel set).
//!
//! [`Deployment`]: crate::Deployment

pub mod mixed_fleet;
pub mod parity;
