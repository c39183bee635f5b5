//! The method table: built-ins under the reserved `rpc.` prefix (each
//! handler file declares its own entry, listed in `handlers::BUILT_INS`),
//! then `service.method` for the configured services. The session calls
//! `route` once per request and hands the request to what it returns.

use crate::config::{MethodConfig, Services};
use crate::handlers::{self, BuiltIn};
use crate::protocol::RpcError;

/// What a method name resolves to.
#[derive(Clone, Copy)]
pub(crate) enum Route<'a> {
    /// A built-in `rpc.*` method.
    BuiltIn(&'static BuiltIn),
    /// `service.method`: a job (`handlers/submit.rs`).
    Call(Target<'a>),
}

impl std::fmt::Debug for Route<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::BuiltIn(b) => f.debug_tuple("BuiltIn").field(&b.name).finish(),
            Route::Call(t) => f.debug_tuple("Call").field(t).finish(),
        }
    }
}

/// The job a `service.method` call becomes.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The queue.
    pub service: &'a str,
    /// The job name.
    pub method: &'a str,
    /// The method's schema and defaults, when configured.
    pub config: Option<&'a MethodConfig>,
}

/// Resolves a method name; unknown services and methods are -32601.
pub(crate) fn route<'a>(services: &'a Services, name: &'a str) -> Result<Route<'a>, RpcError> {
    if let Some(b) = handlers::BUILT_INS.iter().find(|b| b.name == name) {
        return Ok(Route::BuiltIn(b));
    }
    let Some((service, method)) = name.split_once('.') else {
        return Err(RpcError::method_not_found(name));
    };
    if method.is_empty() {
        return Err(RpcError::method_not_found(name));
    }
    match services.lookup(service, method) {
        Some((_, config)) => Ok(Route::Call(Target {
            service,
            method,
            config,
        })),
        None => Err(RpcError::method_not_found(name)),
    }
}

/// Every method name the table knows ahead of time: the built-ins and the
/// configured methods of services that list theirs (`/metrics` labels).
pub(crate) fn known_methods(services: &Services) -> Vec<String> {
    let built_ins = handlers::BUILT_INS.iter().map(|b| b.name.to_string());
    let configured = services.0.iter().flat_map(|(service, config)| {
        config
            .methods
            .iter()
            .flat_map(|m| m.keys())
            .map(move |method| format!("{service}.{method}"))
    });
    built_ins.chain(configured).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_builtins_and_configured_services_only() {
        let mut s = Services::default();
        s.add_list("demo").unwrap();
        for name in [
            "rpc.status",
            "rpc.cancel",
            "rpc.subscribe",
            "rpc.unsubscribe",
            "rpc.auth",
        ] {
            assert!(
                matches!(route(&s, name), Ok(Route::BuiltIn(b)) if b.name == name),
                "{name}"
            );
        }
        assert!(matches!(
            route(&s, "demo.echo"),
            Ok(Route::Call(Target {
                service: "demo",
                method: "echo",
                config: None
            }))
        ));
        assert!(matches!(
            route(&s, "demo.a.b"),
            Ok(Route::Call(Target { method: "a.b", .. }))
        ));
        for bad in ["rpc.nope", "other.echo", "demo", "demo.", "", ".x"] {
            assert_eq!(route(&s, bad).unwrap_err().code, -32601, "{bad}");
        }
    }

    #[test]
    fn known_methods_are_built_ins_and_listed_methods() {
        let mut s = Services::default();
        s.add_list("open").unwrap();
        let methods = [("run".to_string(), MethodConfig::default())].into();
        s.0.insert(
            "listed".into(),
            std::sync::Arc::new(crate::config::ServiceConfig {
                methods: Some(methods),
            }),
        );
        let mut known = known_methods(&s);
        known.sort();
        assert_eq!(
            known,
            [
                "listed.run",
                "rpc.auth",
                "rpc.cancel",
                "rpc.status",
                "rpc.subscribe",
                "rpc.unsubscribe"
            ]
        );
    }

    #[test]
    fn built_in_names_are_unique_and_reserved() {
        let mut names: Vec<&str> = handlers::BUILT_INS.iter().map(|b| b.name).collect();
        assert!(names.iter().all(|n| n.starts_with("rpc.")), "{names:?}");
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), handlers::BUILT_INS.len());
    }
}
