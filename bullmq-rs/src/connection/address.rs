//! Connection errors that say which server failed: `host:port` (or the
//! socket path) from the URL, never its user or password.

use std::io;

use redis::RedisError;

/// The server's address as the client will dial it.
pub(crate) fn address_of(client: &redis::Client) -> String {
    client.get_connection_info().addr().to_string()
}

/// `e` with the address in front of its message when it is an I/O error;
/// the I/O kind stays, so `is_connection_refusal`, `is_timeout` and
/// `is_connection_dropped` answer as before.
pub(crate) fn with_address(e: RedisError, address: &str) -> RedisError {
    if !e.is_io_error() || e.to_string().starts_with(address) {
        return e;
    }
    let kind = io_kind(&e).unwrap_or(if e.is_connection_dropped() {
        io::ErrorKind::ConnectionReset
    } else {
        io::ErrorKind::Other
    });
    RedisError::from(io::Error::new(kind, format!("{address}: {e}")))
}

/// The kind of the I/O error behind `e`, if one is.
pub(crate) fn io_kind(e: &RedisError) -> Option<io::ErrorKind> {
    let source = std::error::Error::source(e)?;
    // redis keeps its inner error in an Arc, which is what `source` gives
    let inner: &(dyn std::error::Error + 'static) =
        match source.downcast_ref::<std::sync::Arc<dyn std::error::Error + Send + Sync>>() {
            Some(arc) => arc.as_ref(),
            None => source,
        };
    inner.downcast_ref::<io::Error>().map(io::Error::kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_named_and_the_kind_kept() {
        let refused = RedisError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        let named = with_address(refused, "10.0.0.7:6380");
        assert!(named.is_connection_refusal());
        assert!(named.to_string().starts_with("10.0.0.7:6380: "), "{named}");
        let dropped = RedisError::from(io::Error::from(io::ErrorKind::BrokenPipe));
        let named = with_address(dropped, "h:1");
        assert!(named.is_connection_dropped());
        assert_eq!(io_kind(&named), Some(io::ErrorKind::BrokenPipe));
        let server = RedisError::from((redis::ErrorKind::Client, "nope"));
        assert_eq!(with_address(server, "h:1").to_string(), "nope - Client");
    }

    #[test]
    fn the_password_is_never_named() {
        let client = redis::Client::open("redis://app:s3cret@127.0.0.1:6390/2").unwrap();
        assert_eq!(address_of(&client), "127.0.0.1:6390");
    }
}
