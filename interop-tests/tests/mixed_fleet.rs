//! Scenario 2: one queue, a Rust, a Node and a Python worker at once, and
//! producers in all three languages adding 3,000 jobs (plain, delayed,
//! prioritized, some failing once then retried). Every job must complete
//! exactly once: none lost, none run to completion twice.
//!
//! The scenario is `interop_tests::scenarios::mixed_fleet`; here it runs on
//! one server with all three languages.

use interop_tests::scenarios::mixed_fleet::languages_share_one_queue_exactly_once;
use interop_tests::{Lang, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_languages_share_one_queue_exactly_once() {
    let server = RedisServer::start();
    languages_share_one_queue_exactly_once(&server, &[Lang::Rust, Lang::Node, Lang::Python]).await;
}
