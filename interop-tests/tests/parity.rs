//! Scenario 1 of the conformance suite: the same jobs, with every option,
//! run once through a Node worker and once through ours (and produced once
//! by Node and once by us); what Node's `Queue`/`Job` API reads afterwards
//! and the per-job event sequences a Node `QueueEvents` saw must be equal.
//!
//! The scenario is `interop_tests::scenarios::parity`; here it runs on one
//! server.

use interop_tests::scenarios::parity::{
    rust_producer_matches_node_producer, rust_worker_matches_node_worker,
};
use interop_tests::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_producer_rust_worker_matches_node_worker() {
    rust_worker_matches_node_worker(&RedisServer::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_producer_node_worker_matches_node_producer() {
    rust_producer_matches_node_producer(&RedisServer::start()).await;
}
