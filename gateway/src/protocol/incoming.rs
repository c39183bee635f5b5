//! What a client sends: one request or a batch, parsed with JSON-RPC 2.0's
//! exact errors. Members beyond the standard ones (`jobId`, `options`,
//! `ack`) are type-checked here and interpreted by the handlers.

use bullmq_wire::JsonText;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
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
    /// An object or array, as the client wrote it (a call's params become
    /// its job's data without being read into a tree); `None` when absent.
    pub params: Option<JsonText>,
    /// The client's idempotency key.
    pub job_id: Option<String>,
    /// Job options as sent (checked and clamped by the submit handler).
    pub options: Option<Map<String, Value>>,
    /// Answer at once with an `rpc.accepted` notification.
    pub ack: bool,
}

impl Request {
    /// The params, parsed (for the built-in methods that read them).
    pub fn params_value(&self) -> Option<Value> {
        self.params.as_ref().map(JsonText::to_value)
    }
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
    // the frame is split into its requests as text; each request's members
    // are then read one by one, and its params are kept as text; first, it
    // must be JSON a tree would accept (see `strict`)
    if let Err(e) = super::strict::check(text) {
        return Incoming::Invalid(RpcError::parse_error(e));
    }
    if text.trim_start().starts_with('[') {
        let items: Vec<&RawValue> = match serde_json::from_str(text) {
            Ok(items) => items,
            Err(e) => return Incoming::Invalid(RpcError::parse_error(e)),
        };
        if items.is_empty() {
            return Incoming::Invalid(RpcError::invalid_request("empty batch"));
        }
        if items.len() > max_batch {
            return Incoming::Invalid(RpcError::invalid_request(format!(
                "batch of {} requests, the maximum is {max_batch}",
                items.len()
            )));
        }
        let mut items: Vec<Item> = items.iter().map(|r| r.get()).map(parse_request).collect();
        keep_numeric_ids_exact(text, &mut items);
        return Incoming::Batch(items);
    }
    // one value (the strict pass read it whole): its text is the frame's
    // without the whitespace around it, so it is not split again
    let item = text.trim_matches(|c| matches!(c, ' ' | '\n' | '\r' | '\t'));
    let mut item = [parse_request(item)];
    keep_numeric_ids_exact(text, &mut item);
    let [item] = item;
    Incoming::Single(item)
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

/// The members of a request object that mean something, as text; a member
/// present with `null` is `Some("null")`, unknown members are skipped.
#[derive(Deserialize)]
struct Members<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(rename = "jobId", borrow, default, deserialize_with = "present")]
    job_id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    options: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    ack: Option<&'a RawValue>,
}

/// For `#[serde(default, deserialize_with = "present")]` on an
/// `Option<&RawValue>` member: a member sent as `null` is `Some("null")`,
/// as in a tree (serde's `Option` would make it `None`, as if absent).
pub(crate) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// A member's value (the text is JSON the frame's parser checked).
fn value(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

// an error's `data` is a JSON value, larger with serde_json's preserve_order;
// a rejection is made once per bad request, so boxing it buys nothing
#[allow(clippy::result_large_err)]
fn parse_request(raw: &str) -> Item {
    if !raw.starts_with('{') {
        return Err(Rejected {
            id: Some(Id::Null),
            error: RpcError::invalid_request("a request must be an object"),
        });
    }
    let m: Members<'_> = match serde_json::from_str(raw) {
        Ok(m) => m,
        // a member given twice (or a member of an unexpected shape that
        // the text reader refuses): read as a tree, where the last wins
        Err(_) => return parse_request_tree(serde_json::from_str(raw).unwrap_or(Value::Null)),
    };
    let text = |raw: Option<&RawValue>| raw.map(value);
    let parts = Parts {
        id: text(m.id),
        jsonrpc: m.jsonrpc.map(|v| v.get() == "\"2.0\"" || value(v) == "2.0"),
        method: text(m.method),
        params: match m.params {
            None => None,
            Some(p) if p.get().starts_with(['{', '[']) => Some(Ok(JsonText::from_raw(p))),
            Some(p) => Some(Err(value(p))),
        },
        job_id: text(m.job_id),
        options: text(m.options),
        ack: text(m.ack),
    };
    parts.check()
}

/// A request read as a tree (see `parse_request`).
#[allow(clippy::result_large_err)]
fn parse_request_tree(value: Value) -> Item {
    let Value::Object(mut m) = value else {
        return Err(Rejected {
            id: Some(Id::Null),
            error: RpcError::invalid_request("a request must be an object"),
        });
    };
    let parts = Parts {
        id: m.remove("id"),
        jsonrpc: m.remove("jsonrpc").map(|v| v == "2.0"),
        method: m.remove("method"),
        params: match m.remove("params") {
            None => None,
            Some(v @ (Value::Object(_) | Value::Array(_))) => Some(Ok(JsonText::from_value(&v))),
            Some(v) => Some(Err(v)),
        },
        job_id: m.remove("jobId"),
        options: m.remove("options"),
        ack: m.remove("ack"),
    };
    parts.check()
}

/// A request's members, before they are checked; `params` is the text of
/// an object or an array, or what else was sent.
struct Parts {
    id: Option<Value>,
    /// Present, and whether it is `"2.0"`.
    jsonrpc: Option<bool>,
    method: Option<Value>,
    params: Option<Result<JsonText, Value>>,
    job_id: Option<Value>,
    options: Option<Value>,
    ack: Option<Value>,
}

impl Parts {
    /// The request, or the first thing wrong with it, in JSON-RPC's order.
    #[allow(clippy::result_large_err)]
    fn check(self) -> Item {
        let id = match self.id {
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
        // Until `jsonrpc` and `method` are checked this is not a
        // notification, so errors are answered (with id null when there
        // was no id).
        let answer = |error: RpcError| Rejected {
            id: Some(id.clone().unwrap_or(Id::Null)),
            error,
        };
        match self.jsonrpc {
            Some(true) => {}
            Some(false) => {
                return Err(answer(RpcError::invalid_request("jsonrpc must be \"2.0\"")))
            }
            None => {
                return Err(answer(RpcError::invalid_request(
                    "missing jsonrpc: \"2.0\"",
                )))
            }
        }
        let method = match self.method {
            Some(Value::String(s)) => s,
            Some(_) => return Err(answer(RpcError::invalid_request("method must be a string"))),
            None => return Err(answer(RpcError::invalid_request("missing method"))),
        };
        // From here on the request is well-formed: a notification gets no
        // answer.
        let reject = |error: RpcError| Rejected {
            id: id.clone(),
            error,
        };
        let params = match self.params {
            None => None,
            Some(Ok(text)) => Some(text),
            Some(Err(_)) => {
                return Err(reject(RpcError::invalid_params(
                    "params must be an object or an array",
                )))
            }
        };
        let job_id = match self.job_id {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(reject(RpcError::invalid_params("jobId must be a string"))),
        };
        let options = match self.options {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(o),
            Some(_) => {
                return Err(reject(RpcError::invalid_params(
                    "options must be an object",
                )))
            }
        };
        let ack = match self.ack {
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
}
