//! The method table: built-ins under the reserved `rpc.` prefix, then
//! `service.method` for the configured services. The session calls
//! [`route`] once per request and runs the matching handler.

use crate::config::{MethodConfig, Services};
use crate::protocol::RpcError;

/// What a method name resolves to.
#[derive(Debug, Clone, Copy)]
pub enum Route<'a> {
    /// `rpc.subscribe {jobId}`: re-attach to a job (`handlers/subscribe.rs`).
    Subscribe,
    /// `rpc.unsubscribe {jobId}`: stop watching a job (the session).
    Unsubscribe,
    /// `rpc.status {jobId}` (`handlers/status.rs`).
    Status,
    /// `rpc.cancel {jobId}` (`handlers/cancel.rs`).
    Cancel,
    /// `rpc.auth {token}` (`handlers/auth.rs`).
    Auth,
    /// `service.method`: a job (`handlers/submit.rs`).
    Call {
        /// The queue.
        service: &'a str,
        /// The job name.
        method: &'a str,
        /// The method's schema and defaults, when configured.
        config: Option<&'a MethodConfig>,
    },
}

/// The built-in methods, by name.
pub const BUILT_INS: [(&str, Route<'static>); 5] = [
    ("rpc.subscribe", Route::Subscribe),
    ("rpc.unsubscribe", Route::Unsubscribe),
    ("rpc.status", Route::Status),
    ("rpc.cancel", Route::Cancel),
    ("rpc.auth", Route::Auth),
];

/// Resolves a method name; unknown services and methods are -32601.
pub fn route<'a>(services: &'a Services, name: &'a str) -> Result<Route<'a>, RpcError> {
    if let Some((_, r)) = BUILT_INS.iter().find(|(n, _)| *n == name) {
        return Ok(*r);
    }
    let Some((service, method)) = name.split_once('.') else {
        return Err(RpcError::method_not_found(name));
    };
    if method.is_empty() {
        return Err(RpcError::method_not_found(name));
    }
    match services.lookup(service, method) {
        Some((_, config)) => Ok(Route::Call {
            service,
            method,
            config,
        }),
        None => Err(RpcError::method_not_found(name)),
    }
}

/// The metrics label of a method: the name when it routes, `unknown`
/// otherwise (clients cannot grow the label set).
pub fn metric_label(route: Option<&Route<'_>>, name: &str) -> String {
    match route {
        Some(_) => name.to_string(),
        None => "unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_builtins_and_configured_services_only() {
        let mut s = Services::default();
        s.add_list("demo").unwrap();
        assert!(matches!(route(&s, "rpc.status"), Ok(Route::Status)));
        assert!(matches!(
            route(&s, "demo.echo"),
            Ok(Route::Call {
                service: "demo",
                method: "echo",
                config: None
            })
        ));
        assert!(matches!(
            route(&s, "demo.a.b"),
            Ok(Route::Call { method: "a.b", .. })
        ));
        for bad in ["rpc.nope", "other.echo", "demo", "demo.", "", ".x"] {
            assert_eq!(route(&s, bad).unwrap_err().code, -32601, "{bad}");
        }
    }
}
