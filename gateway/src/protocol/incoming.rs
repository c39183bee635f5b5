//! What a client sends: one request or a batch, parsed with JSON-RPC 2.0's
//! exact errors. Members beyond the standard ones (`jobId`, `options`,
//! `ack`) are type-checked here and interpreted by the handlers.

use serde::Serialize;
use serde_json::{Map, Number, Value};

use super::error::RpcError;
use super::exact_id::{raw_numeric_ids, NumberText};

/// A request id: a string, a number, or null (JSON-RPC allows all three).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Id {
    /// An integer that fits in 64 bits.
    Number(Number),
    /// Any other number, as the client wrote it (see `exact_id`).
    Exact(NumberText),
    /// A string.
    String(String),
    /// `null` (allowed, discouraged by the spec).
    Null,
}

impl Id {
    fn from_value(v: Value) -> Option<Id> {
        match v {
            Value::Number(n) => Some(Id::Number(n)),
            Value::String(s) => Some(Id::String(s)),
            Value::Null => Some(Id::Null),
            _ => None,
        }
    }
}

/// A well-formed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `None` for a notification (no `id` member): fire-and-forget, never
    /// answered.
    pub id: Option<Id>,
    /// `service.method` or a built-in `rpc.*`.
    pub method: String,
    /// An object or array; `None` when absent.
    pub params: Option<Value>,
    /// The client's idempotency key.
    pub job_id: Option<String>,
    /// Job options as sent (checked and clamped by the submit handler).
    pub options: Option<Map<String, Value>>,
    /// Answer at once with an `rpc.accepted` notification.
    pub ack: bool,
}

/// A request that could not be accepted, with the id to answer (null when
/// the id itself was unreadable).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The id to put in the error response; `None` for a well-formed
    /// notification, which gets no answer.
    pub id: Option<Id>,
    /// The error.
    pub error: RpcError,
}

impl Rejected {
    /// The error response to send, or `None` for a notification.
    pub fn into_response(self) -> Option<super::Response> {
        self.id.map(|id| super::Response::err(id, self.error))
    }
}

/// One element of a frame: a request, or why it is not one.
pub type Item = Result<Request, Rejected>;

/// A parsed text frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A single request.
    Single(Item),
    /// A non-empty batch, in order.
    Batch(Vec<Item>),
    /// The whole frame is rejected with one error response (id null):
    /// not JSON, an empty batch, or a batch over the limit.
    Invalid(RpcError),
}

/// Parses a text frame. `max_batch` bounds the number of requests in a batch.
pub fn parse(text: &str, max_batch: usize) -> Incoming {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Incoming::Invalid(RpcError::parse_error(e)),
    };
    match value {
        Value::Array(items) if items.is_empty() => {
            Incoming::Invalid(RpcError::invalid_request("empty batch"))
        }
        Value::Array(items) if items.len() > max_batch => {
            Incoming::Invalid(RpcError::invalid_request(format!(
                "batch of {} requests, the maximum is {max_batch}",
                items.len()
            )))
        }
        Value::Array(items) => {
            let mut items: Vec<Item> = items.into_iter().map(parse_request).collect();
            keep_numeric_ids_exact(text, &mut items);
            Incoming::Batch(items)
        }
        other => {
            let mut item = [parse_request(other)];
            keep_numeric_ids_exact(text, &mut item);
            let [item] = item;
            Incoming::Single(item)
        }
    }
}

/// Replaces each id that serde_json read as a float with the text the client
/// sent; frames without such an id are left alone and not read again.
fn keep_numeric_ids_exact(text: &str, items: &mut [Item]) {
    let inexact = |item: &Item| matches!(item_id(item), Some(Id::Number(n)) if n.is_f64());
    if !items.iter().any(inexact) {
        return;
    }
    let Some(raw) = raw_numeric_ids(text) else {
        return;
    };
    for (item, raw) in items.iter_mut().zip(raw) {
        if let (true, Some(raw)) = (inexact(item), raw) {
            if let Some(id) = item_id_mut(item) {
                *id = Id::Exact(raw);
            }
        }
    }
}

fn item_id(item: &Item) -> Option<&Id> {
    match item {
        Ok(r) => r.id.as_ref(),
        Err(r) => r.id.as_ref(),
    }
}

fn item_id_mut(item: &mut Item) -> Option<&mut Id> {
    match item {
        Ok(r) => r.id.as_mut(),
        Err(r) => r.id.as_mut(),
    }
}

// an error's `data` is a JSON value, larger with serde_json's preserve_order;
// a rejection is made once per bad request, so boxing it buys nothing
#[allow(clippy::result_large_err)]
fn parse_request(value: Value) -> Item {
    let Value::Object(mut m) = value else {
        return Err(Rejected {
            id: Some(Id::Null),
            error: RpcError::invalid_request("a request must be an object"),
        });
    };
    let id = match m.remove("id") {
        None => None,
        Some(v) => match Id::from_value(v) {
            Some(id) => Some(id),
            None => {
                return Err(Rejected {
                    id: Some(Id::Null),
                    error: RpcError::invalid_request("id must be a string, a number or null"),
                })
            }
        },
    };
    // Until `jsonrpc` and `method` are checked this is not a notification,
    // so errors are answered (with id null when there was no id).
    let answer = |error: RpcError| Rejected {
        id: Some(id.clone().unwrap_or(Id::Null)),
        error,
    };
    match m.remove("jsonrpc") {
        Some(Value::String(v)) if v == "2.0" => {}
        Some(_) => return Err(answer(RpcError::invalid_request("jsonrpc must be \"2.0\""))),
        None => {
            return Err(answer(RpcError::invalid_request(
                "missing jsonrpc: \"2.0\"",
            )))
        }
    }
    let method = match m.remove("method") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(answer(RpcError::invalid_request("method must be a string"))),
        None => return Err(answer(RpcError::invalid_request("missing method"))),
    };
    // From here on the request is well-formed: a notification gets no answer.
    let reject = |error: RpcError| Rejected {
        id: id.clone(),
        error,
    };
    let params = match m.remove("params") {
        None => None,
        Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v),
        Some(_) => {
            return Err(reject(RpcError::invalid_params(
                "params must be an object or an array",
            )))
        }
    };
    let job_id = match m.remove("jobId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(reject(RpcError::invalid_params("jobId must be a string"))),
    };
    let options = match m.remove("options") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => Some(o),
        Some(_) => {
            return Err(reject(RpcError::invalid_params(
                "options must be an object",
            )))
        }
    };
    let ack = match m.remove("ack") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(reject(RpcError::invalid_params("ack must be a boolean"))),
    };
    Ok(Request {
        id,
        method,
        params,
        job_id,
        options,
        ack,
    })
}
