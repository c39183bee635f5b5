//! Shared helpers: a Redis per test, unique queue names, waiting on
//! conditions with generous deadlines instead of sleeping.

use std::future::Future;
use std::time::Duration;

use bullmq_wire::testing::RedisServer;
use bullmq_wire::Connection;

pub struct Ctx {
    pub server: RedisServer,
    pub conn: Connection,
}

pub async fn ctx() -> Ctx {
    let server = RedisServer::start();
    let conn = Connection::open(&server.url())
        .await
        .expect("connect to test redis");
    Ctx { server, conn }
}

pub fn queue_name() -> String {
    format!("q{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Polls `check` until it returns Some, failing the test after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn raw<T: redis::FromRedisValue>(ctx: &Ctx, cmd: &mut redis::Cmd) -> T {
    let client = redis::Client::open(ctx.server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    cmd.query_async(&mut con).await.unwrap()
}

/// Waits until `id` is in `state`, failing the test after 20 s.
pub async fn wait_state(queue: &bullmq_wire::Queue, id: &str, state: bullmq_wire::JobState) {
    eventually(20, &format!("job {id} to be {state}"), || async {
        (queue.get_job_state(id).await.unwrap() == state).then_some(())
    })
    .await;
}
