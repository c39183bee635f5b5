//! The handler table: `service.method` -> handler.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use bullmq_wire::JobError;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::call::Call;

/// A registered handler.
pub type Handler = Arc<dyn Fn(Call) -> BoxFuture<'static, Result<Value, JobError>> + Send + Sync>;

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not `service.method`, or a part BullMQ cannot name.
    #[error("invalid method name {0:?}: use service.method (no ':' in either part)")]
    InvalidName(String),
    /// Registered twice.
    #[error("{0} is registered twice")]
    Duplicate(String),
}

/// Handlers by service (the BullMQ queue) and method (the job name).
#[derive(Default, Clone)]
pub struct Registry {
    services: BTreeMap<String, BTreeMap<String, Handler>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.methods()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a handler taking the raw [`Call`].
    pub fn handle<F, Fut>(&mut self, method: &str, f: F) -> Result<&mut Self, RegistryError>
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, JobError>> + Send + 'static,
    {
        let (service, name) = split(method)?;
        let methods = self.services.entry(service.to_string()).or_default();
        if methods.contains_key(name) {
            return Err(RegistryError::Duplicate(method.to_string()));
        }
        methods.insert(name.to_string(), Arc::new(move |call| Box::pin(f(call))));
        Ok(self)
    }

    /// Registers a handler with typed params and result.
    pub fn typed<P, R, F, Fut>(&mut self, method: &str, f: F) -> Result<&mut Self, RegistryError>
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + 'static,
        F: Fn(Call, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, JobError>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.handle(method, move |call| {
            let f = f.clone();
            async move {
                let params: P = call.params()?;
                let result = f(call, params).await?;
                serde_json::to_value(result)
                    .map_err(|e| JobError::unrecoverable(format!("result is not JSON: {e}")))
            }
        })
    }

    /// Adds every handler of `other`.
    pub fn merge(&mut self, other: Registry) -> Result<&mut Self, RegistryError> {
        for (service, methods) in other.services {
            for (name, handler) in methods {
                let entry = self.services.entry(service.clone()).or_default();
                if entry.contains_key(&name) {
                    return Err(RegistryError::Duplicate(format!("{service}.{name}")));
                }
                entry.insert(name, handler);
            }
        }
        Ok(self)
    }

    /// The services (queues) with at least one handler.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    /// Every `service.method`.
    pub fn methods(&self) -> Vec<String> {
        self.services
            .iter()
            .flat_map(|(s, m)| m.keys().map(move |n| format!("{s}.{n}")))
            .collect()
    }

    pub(crate) fn service(&self, service: &str) -> Option<&BTreeMap<String, Handler>> {
        self.services.get(service)
    }
}

fn split(method: &str) -> Result<(&str, &str), RegistryError> {
    let invalid = || RegistryError::InvalidName(method.to_string());
    let (service, name) = method.split_once('.').ok_or_else(invalid)?;
    if service.is_empty() || name.is_empty() || service.contains(':') || name.contains('.') {
        return Err(invalid());
    }
    Ok((service, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_service_dot_method() {
        let mut r = Registry::new();
        r.handle("demo.echo", |_c| async { Ok(Value::Null) })
            .unwrap();
        assert!(matches!(
            r.handle("demo.echo", |_c| async { Ok(Value::Null) }),
            Err(RegistryError::Duplicate(_))
        ));
        for bad in ["demo", ".x", "x.", "a:b.c", "a.b.c"] {
            assert!(
                matches!(
                    r.handle(bad, |_c| async { Ok(Value::Null) }),
                    Err(RegistryError::InvalidName(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(r.methods(), ["demo.echo"]);
    }
}
