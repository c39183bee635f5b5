//! Property tests of the frame parser and the dispatcher: any text a client
//! can send is answered by the rules, never by a panic.
//!
//! Bounded for CI (`PROPTEST_CASES`, 256 by default); run longer by hand:
//! `PROPTEST_CASES=200000 cargo test -p gateway --lib properties`.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;
use crate::config::Services;
use crate::dispatch::{route, Route, Target};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{0,6}|id|method|jsonrpc|params", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A request-shaped object whose members may each be missing, well typed or
/// of the wrong type.
fn request_like() -> impl Strategy<Value = Value> {
    let member = |good: BoxedStrategy<Value>| {
        prop_oneof![
            2 => Just(None),
            5 => good.prop_map(Some),
            2 => any_json().prop_map(Some),
        ]
    };
    (
        member(Just(json!("2.0")).boxed()),
        member(
            prop_oneof![
                "[a-z]{1,8}".prop_map(Value::String),
                any::<i64>().prop_map(Value::from),
                Just(Value::Null)
            ]
            .boxed(),
        ),
        member(
            "(rpc|demo|[a-z]{1,5})\\.[a-z]{0,6}"
                .prop_map(Value::String)
                .boxed(),
        ),
        member(prop_oneof![Just(json!({})), Just(json!([1, 2])), Just(json!({"a": 1}))].boxed()),
        member("[a-z0-9-]{0,10}".prop_map(Value::String).boxed()),
        member(Just(json!({"attempts": 2})).boxed()),
        member(any::<bool>().prop_map(Value::Bool).boxed()),
    )
        .prop_map(|(jsonrpc, id, method, params, job_id, options, ack)| {
            let mut m = Map::new();
            for (k, v) in [
                ("jsonrpc", jsonrpc),
                ("id", id),
                ("method", method),
                ("params", params),
                ("jobId", job_id),
                ("options", options),
                ("ack", ack),
            ] {
                if let Some(v) = v {
                    m.insert(k.to_string(), v);
                }
            }
            Value::Object(m)
        })
}

/// What the spec says about one element: `Some(valid)` when it gets an
/// answer or is accepted, `None` when it is a well-formed notification that
/// nothing answers.
fn well_typed(v: &Value) -> bool {
    let Value::Object(m) = v else { return false };
    let id_ok = matches!(
        m.get("id"),
        None | Some(Value::Null | Value::String(_) | Value::Number(_))
    );
    id_ok
        && m.get("jsonrpc") == Some(&json!("2.0"))
        && matches!(m.get("method"), Some(Value::String(_)))
        && matches!(
            m.get("params"),
            None | Some(Value::Object(_) | Value::Array(_))
        )
        && matches!(m.get("jobId"), None | Some(Value::Null | Value::String(_)))
        && matches!(
            m.get("options"),
            None | Some(Value::Null | Value::Object(_))
        )
        && matches!(m.get("ack"), None | Some(Value::Null | Value::Bool(_)))
}

/// Checks one parsed element against its source value.
fn check_item(source: &Value, item: &Item) -> Result<(), TestCaseError> {
    match item {
        Ok(req) => {
            prop_assert!(well_typed(source), "accepted {source}");
            let m = source.as_object().expect("well typed is an object");
            prop_assert_eq!(Some(&Value::String(req.method.clone())), m.get("method"));
            prop_assert_eq!(
                req.id
                    .as_ref()
                    .map(|id| serde_json::to_value(id).expect("id")),
                m.get("id").cloned()
            );
        }
        Err(rejected) => {
            prop_assert!(!well_typed(source), "rejected a well-typed {source}");
            // Only a request that had a readable id and a method may go
            // unanswered: it is a notification with bad params.
            if rejected.id.is_none() {
                let m = source.as_object().expect("a notification is an object");
                prop_assert!(!m.contains_key("id"));
                prop_assert!(matches!(m.get("method"), Some(Value::String(_))));
            }
            let text = rejected.clone().into_response().map(|r| to_text(&r));
            if let Some(text) = text {
                let back: Value = serde_json::from_str(&text).expect("responses are JSON");
                prop_assert_eq!(&back["jsonrpc"], "2.0");
                prop_assert!(back["error"]["code"].is_i64());
            }
        }
    }
    Ok(())
}

proptest! {
    /// Arbitrary text never panics, and what is not JSON is a parse error.
    #[test]
    fn any_text_is_answered(text in "\\PC{0,200}") {
        let parsed = parse(&text, 8);
        if serde_json::from_str::<Value>(&text).is_err() {
            prop_assert!(
                matches!(&parsed, Incoming::Invalid(e) if e.code == ErrorCode::ParseError.code())
            );
        }
    }

    /// Arbitrary JSON: one element answered (or accepted) per batch element,
    /// in order, each by the spec's rules.
    #[test]
    fn any_json_follows_the_spec(v in any_json()) {
        let text = v.to_string();
        match (&v, parse(&text, 8)) {
            (Value::Array(items), Incoming::Batch(parsed)) => {
                prop_assert!(!items.is_empty() && items.len() <= 8);
                prop_assert_eq!(items.len(), parsed.len());
                for (source, item) in items.iter().zip(&parsed) {
                    check_item(source, item)?;
                }
            }
            (Value::Array(items), Incoming::Invalid(_)) => {
                prop_assert!(items.is_empty() || items.len() > 8);
            }
            (source, Incoming::Single(item)) => {
                prop_assert!(!source.is_array());
                check_item(source, &item)?;
            }
            (source, other) => prop_assert!(false, "{source} parsed as {other:?}"),
        }
    }

    /// Request-shaped objects, alone and in batches, with each member right,
    /// wrong or missing.
    #[test]
    fn request_like_frames_follow_the_spec(batch in prop::collection::vec(request_like(), 1..6)) {
        let single = batch[0].to_string();
        match parse(&single, 8) {
            Incoming::Single(item) => check_item(&batch[0], &item)?,
            other => prop_assert!(false, "{single} parsed as {other:?}"),
        }
        let text = Value::Array(batch.clone()).to_string();
        match parse(&text, 8) {
            Incoming::Batch(parsed) => {
                for (source, item) in batch.iter().zip(&parsed) {
                    check_item(source, item)?;
                }
            }
            other => prop_assert!(false, "batch parsed as {other:?}"),
        }
    }

    /// Any method name routes to a built-in, to a configured service, or to
    /// "method not found"; never a panic, never another service.
    #[test]
    fn any_method_name_routes_by_the_rules(name in "\\PC{0,40}|(rpc|demo|data)\\.[a-zA-Z.]{0,8}") {
        let mut services = Services::default();
        services.add_list("demo,data").expect("valid services");
        match route(&services, &name) {
            Ok(Route::Call(Target { service, method, .. })) => {
                prop_assert!(service == "demo" || service == "data");
                prop_assert_eq!(format!("{service}.{method}"), name.clone());
                prop_assert!(!method.is_empty());
            }
            Ok(Route::BuiltIn(b)) => prop_assert_eq!(b.name, name.as_str()),
            Err(e) => prop_assert_eq!(e.code, ErrorCode::MethodNotFound.code()),
        }
    }
}
