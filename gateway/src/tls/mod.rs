//! TLS for `wss://`: an acceptor from PEM files (warp 0.4 has no TLS of its
//! own; `server.rs` runs warp's filter over the accepted streams), the
//! stream itself ([`TlsStream`]), and a generated self-signed certificate for
//! `--dev`.

mod stream;

use std::io;
use std::sync::Arc;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;

use crate::config::TlsConfig;

pub use stream::TlsStream;

/// Accepts TLS connections with one server configuration.
#[derive(Clone)]
pub struct Acceptor(Arc<rustls::ServerConfig>);

impl Acceptor {
    /// Runs the handshake on an accepted socket (the caller bounds its
    /// time).
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<TlsStream> {
        TlsStream::accept(tcp, self.0.clone()).await
    }
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate PEM has no usable certificate.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The key PEM has no usable private key.
    #[error("private key: {0}")]
    Key(String),
    /// rustls refused the pair.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// Generating the dev certificate failed.
    #[error("self-signed certificate: {0}")]
    Generate(String),
}

/// Builds the acceptor (TLS 1.2 and 1.3, ring, ALPN `http/1.1`).
pub fn acceptor(config: &TlsConfig) -> Result<Acceptor, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&config.cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Certificate(
            "no CERTIFICATE block in the PEM".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&config.key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::Key("no private key block in the PEM".into()),
        other => TlsError::Key(other.to_string()),
    })?;
    // ring, deprecated in rustls 0.23.48 for lacking post-quantum key
    // exchange, stays the provider (aws-lc-rs needs a C/cmake build)
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Acceptor(Arc::new(server)))
}

/// A self-signed certificate for `localhost` and `127.0.0.1` (dev only).
pub fn self_signed() -> Result<TlsConfig, TlsError> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let ck =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok(TlsConfig {
        cert_pem: ck.cert.pem().into_bytes(),
        key_pem: ck.signing_key.serialize_pem().into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_an_acceptor_from_pem_and_rejects_junk() {
        let tls = self_signed().unwrap();
        assert!(acceptor(&tls).is_ok());
        let no_key = TlsConfig {
            cert_pem: tls.cert_pem.clone(),
            key_pem: b"junk".to_vec(),
        };
        assert!(matches!(acceptor(&no_key), Err(TlsError::Key(_))));
        let no_cert = TlsConfig {
            cert_pem: Vec::new(),
            key_pem: tls.key_pem,
        };
        assert!(matches!(acceptor(&no_cert), Err(TlsError::Certificate(_))));
    }
}
