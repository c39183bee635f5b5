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

#[tokio::test]
async fn connection_errors_name_host_and_port_never_the_password() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = Connection::open(&format!("redis://app:s3cret@127.0.0.1:{port}"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(err.is_retryable(), "still a connection error: {text}");

    // a command on a connection whose server went away names it too
    let mut server = RedisServer::start();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&queue_name(), &conn).await.unwrap();
    server.kill();
    let err = queue.get_job("1").await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{}", server.port())),
        "{err}"
    );
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn the_first_command_after_a_redis_restart_succeeds() {
    let mut server = RedisServer::start_durable();
    let conn = Connection::open(&server.url()).await.unwrap();
    let queue = Queue::new(&queue_name(), &conn).await.unwrap();
    let before = queue
        .add("t", &json!({"n": 1}), JobOptions::default())
        .await
        .unwrap();

    // restarted while idle: the connection is dead, nobody noticed yet
    server.restart();
    let after = queue
        .add("t", &json!({"n": 2}), JobOptions::default())
        .await
        .expect("the first add after the restart");
    assert_ne!(before, after);

    // used while Redis is down (fails, and the reconnect fails too), then
    // Redis is back: the first call still succeeds
    server.kill();
    assert!(queue.get_job(&before).await.is_err());
    server.restart();
    let job = queue
        .get_job(&after)
        .await
        .expect("the first read after the restart");
    assert_eq!(job.map(|j| j.data), Some(json!({"n": 2})));
    queue
        .add("t", &json!({"n": 3}), JobOptions::default())
        .await
        .expect("a script call after the restart");
}
