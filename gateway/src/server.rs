//! The accept loop: TCP, then TLS when configured, then HTTP/1.1 with
//! upgrades served by warp's filter (as a tower service), each request
//! tagged with the peer address. Stops accepting on shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_service::Service;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::tls::Acceptor;
use crate::upgrade::ClientAddr;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts until `shutdown` turns true.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<Acceptor>,
    routes: BoxedFilter<(Response,)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = warp::service(routes);
    loop {
        let (tcp, addr) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    tracing::warn!(cause = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let service = service.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_io(tcp, addr, service).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => serve_io(stream, addr, service).await,
                        Ok(Err(e)) => tracing::debug!(%addr, cause = %e, "tls handshake failed"),
                        Err(_) => tracing::debug!(%addr, "tls handshake timed out"),
                    }
                }
            }
        });
    }
    tracing::info!("stopped accepting connections");
}

async fn serve_io<I, S>(io: I, addr: SocketAddr, service: S)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<http::Request<Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let svc = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(ClientAddr(addr));
        let mut service = service.clone();
        async move { service.call(req).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%addr, cause = %e, "http connection ended with an error");
    }
}
