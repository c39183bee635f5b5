//! Connecting: TLS with a private CA, ACL users with passwords, and typed
//! errors when Redis cannot be reached.

use bullmq_wire::testing::RedisServer;
use bullmq_wire::{Connection, JobOptions, Queue, RedisOptions};
use serde_json::json;

use crate::support::{ctx, queue_name, raw};

#[tokio::test]
async fn rediss_with_a_private_ca() {
    let server = RedisServer::start_tls();
    let options = RedisOptions {
        tls_ca_pem: Some(server.ca_pem()),
        ..RedisOptions::new(server.tls_url())
    };
    let conn = Connection::connect(options).await.unwrap();
    let queue = Queue::new(&queue_name(), &conn).await.unwrap();
    let id = queue
        .add("t", &json!({"secure": true}), JobOptions::default())
        .await
        .unwrap();
    assert_eq!(
        queue.get_job(&id).await.unwrap().unwrap().data,
        json!({"secure": true})
    );
    // without the CA the certificate is refused
    assert!(Connection::open(&server.tls_url()).await.is_err());
}

#[tokio::test]
async fn user_and_password_in_the_url() {
    let ctx = ctx().await;
    let _: () = raw(
        &ctx,
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg("app")
            .arg("on")
            .arg(">s3cret")
            .arg("~*")
            .arg("&*")
            .arg("+@all"),
    )
    .await;
    let url = ctx
        .server
        .url()
        .replacen("redis://", "redis://app:s3cret@", 1);
    let conn = Connection::open(&url).await.unwrap();
    let queue = Queue::new(&queue_name(), &conn).await.unwrap();
    queue
        .add("t", &json!({}), JobOptions::default())
        .await
        .unwrap();
    let wrong = ctx
        .server
        .url()
        .replacen("redis://", "redis://app:nope@", 1);
    assert!(Connection::open(&wrong).await.is_err());
}

#[tokio::test]
async fn unreachable_redis_is_a_retryable_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = Connection::open(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let err = Connection::open("not a url").await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
}
