//! Golden tests: a frame in, what the protocol layer answers out. Accepted
//! requests are shown as `{"request": ...}` with what was parsed; rejected
//! ones as the exact error response the gateway sends.

use bullmq_wire::JsonText;
use serde_json::{json, Value};

use super::*;

fn render_item(item: Item) -> Option<Value> {
    match item {
        Ok(r) => Some(json!({"request": {
            "id": r.id, "method": r.method, "params": r.params,
            "jobId": r.job_id, "options": r.options, "ack": r.ack,
        }})),
        Err(rejected) => rejected
            .into_response()
            .map(|r| serde_json::to_value(r).unwrap()),
    }
}

fn render(frame: &str) -> Value {
    match parse(frame, 4) {
        Incoming::Invalid(e) => serde_json::to_value(Response::err(Id::Null, e)).unwrap(),
        Incoming::Single(item) => render_item(item).unwrap_or(Value::Null),
        Incoming::Batch(items) => Value::Array(items.into_iter().filter_map(render_item).collect()),
    }
}

/// The one helper: `expected` is JSON text; `null` means "no answer".
fn check(input: &str, expected: &str) {
    let expected: Value = serde_json::from_str(expected).expect("expected is JSON");
    let actual = render(input);
    assert_eq!(
        actual, expected,
        "\ninput:    {input}\nactual:   {actual}\nexpected: {expected}"
    );
}

#[test]
fn not_json_is_a_parse_error_with_id_null() {
    check(
        "{\"jsonrpc\": \"2.0\", \"method\"",
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: EOF while parsing an object at line 1 column 27"}}"#,
    );
    check(
        "hello",
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: expected value at line 1 column 1"}}"#,
    );
}

#[test]
fn wrong_or_missing_jsonrpc_is_invalid_request_keeping_the_id() {
    check(
        r#"{"jsonrpc":"1.0","method":"demo.echo","id":7}"#,
        r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32600,"message":"Invalid Request: jsonrpc must be \"2.0\""}}"#,
    );
    check(
        r#"{"jsonrpc":2.0,"method":"demo.echo","id":"a"}"#,
        r#"{"jsonrpc":"2.0","id":"a","error":{"code":-32600,"message":"Invalid Request: jsonrpc must be \"2.0\""}}"#,
    );
    check(
        r#"{"method":"demo.echo"}"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: missing jsonrpc: \"2.0\""}}"#,
    );
}

#[test]
fn missing_or_non_string_method_is_invalid_request() {
    check(
        r#"{"jsonrpc":"2.0","id":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"Invalid Request: missing method"}}"#,
    );
    check(
        r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: method must be a string"}}"#,
    );
}

#[test]
fn bad_ids_and_non_objects_are_invalid_requests_with_id_null() {
    check(
        r#"{"jsonrpc":"2.0","method":"demo.echo","id":{"a":1}}"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: id must be a string, a number or null"}}"#,
    );
    check(
        "1",
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: a request must be an object"}}"#,
    );
}

#[test]
fn well_formed_requests_keep_ids_exactly() {
    check(
        r#"{"jsonrpc":"2.0","method":"demo.echo","params":{"x":1},"id":"req-123"}"#,
        r#"{"request":{"id":"req-123","method":"demo.echo","params":{"x":1},"jobId":null,"options":null,"ack":false}}"#,
    );
    check(
        r#"{"jsonrpc":"2.0","method":"demo.echo","id":12345678901234567890}"#,
        r#"{"request":{"id":12345678901234567890,"method":"demo.echo","params":null,"jobId":null,"options":null,"ack":false}}"#,
    );
    check(
        r#"{"jsonrpc":"2.0","method":"demo.echo","id":null,"jobId":"k1","options":{"priority":3},"ack":true}"#,
        r#"{"request":{"id":null,"method":"demo.echo","params":null,"jobId":"k1","options":{"priority":3},"ack":true}}"#,
    );
}

#[test]
fn a_notification_is_parsed_without_id_and_its_errors_are_not_answered() {
    check(
        r#"{"jsonrpc":"2.0","method":"demo.echo","params":[1]}"#,
        r#"{"request":{"id":null,"method":"demo.echo","params":[1],"jobId":null,"options":null,"ack":false}}"#,
    );
    check(
        r#"{"jsonrpc":"2.0","method":"demo.echo","params":3}"#,
        "null",
    );
}

#[test]
fn bad_extension_members_are_invalid_params() {
    check(
        r#"{"jsonrpc":"2.0","method":"demo.echo","params":"x","id":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params: params must be an object or an array"}}"#,
    );
    check(
        r#"{"jsonrpc":"2.0","method":"demo.echo","jobId":5,"id":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params: jobId must be a string"}}"#,
    );
    check(
        r#"{"jsonrpc":"2.0","method":"demo.echo","options":[],"id":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params: options must be an object"}}"#,
    );
    check(
        r#"{"jsonrpc":"2.0","method":"demo.echo","ack":"yes","id":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params: ack must be a boolean"}}"#,
    );
}

#[test]
fn batches() {
    check(
        "[]",
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: empty batch"}}"#,
    );
    check(
        "[1,2,3]",
        r#"[
            {"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: a request must be an object"}},
            {"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: a request must be an object"}},
            {"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: a request must be an object"}}
        ]"#,
    );
    check(
        r#"[{"jsonrpc":"2.0","method":"a.b","id":1},{"jsonrpc":"2.0","method":"a.b"},{"foo":"boo"}]"#,
        r#"[
            {"request":{"id":1,"method":"a.b","params":null,"jobId":null,"options":null,"ack":false}},
            {"request":{"id":null,"method":"a.b","params":null,"jobId":null,"options":null,"ack":false}},
            {"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: missing jsonrpc: \"2.0\""}}
        ]"#,
    );
    check(
        "[{},{},{},{},{}]",
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: batch of 5 requests, the maximum is 4"}}"#,
    );
}

#[test]
fn outgoing_frames() {
    let id = Id::String("req-1".into());
    let text = to_text(&Response::ok(id.clone(), json!({"echo": 1})).for_job("demo.abc.1"));
    assert_eq!(
        text,
        r#"{"jsonrpc":"2.0","id":"req-1","jobId":"demo.abc.1","result":{"echo":1}}"#
    );
    let text = to_text(&Response::err(id.clone(), RpcError::job_failed("boom", 3)).for_job("j"));
    assert_eq!(
        text,
        r#"{"jsonrpc":"2.0","id":"req-1","jobId":"j","error":{"code":-32010,"message":"Job failed","data":{"failedReason":"boom","attemptsMade":3}}}"#
    );
    assert_eq!(
        to_text(&Notification::progress(&id, "j", &json!(50))),
        r#"{"jsonrpc":"2.0","method":"rpc.progress","params":{"id":"req-1","jobId":"j","progress":50}}"#
    );
    assert_eq!(
        to_text(&Notification::accepted(&Id::Number(7.into()), "j")),
        r#"{"jsonrpc":"2.0","method":"rpc.accepted","params":{"id":7,"jobId":"j"}}"#
    );
}

/// The id of the answer to `frame`'s first request, as the wire text has it.
fn echoed_ids(frame: &str) -> Vec<String> {
    let items = match parse(frame, 4) {
        Incoming::Single(item) => vec![item],
        Incoming::Batch(items) => items,
        Incoming::Invalid(_) => Vec::new(),
    };
    items
        .into_iter()
        .map(|item| {
            let id = match item {
                Ok(r) => r.id.expect("not a notification"),
                Err(r) => r.id.expect("answered"),
            };
            let text = to_text(&Response::ok(id, json!(true)));
            let start = text.find(r#""id":"#).expect("has an id") + 5;
            let end = text[start..].find(r#","result""#).expect("has a result") + start;
            text[start..end].to_string()
        })
        .collect()
}

#[test]
fn numeric_ids_come_back_exactly_as_sent() {
    let frame = r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"demo.echo"}"#;
    assert_eq!(echoed_ids(frame), ["123456789012345678901234567890"]);
    let batch = r#"[{"jsonrpc":"2.0","id":1.50,"method":"a.b"},
        {"jsonrpc":"2.0","id":7,"method":"a.b"},
        {"jsonrpc":"2.0","id":-2E3,"method":"a.b"},
        {"jsonrpc":"2.0","id":"1e3","method":"a.b"}]"#;
    assert_eq!(echoed_ids(batch), ["1.50", "7", "-2E3", r#""1e3""#]);
    // A rejected request echoes its id exactly too.
    let bad = r#"{"jsonrpc":"1.0","id":9007199254740993.0,"method":"a.b"}"#;
    assert_eq!(echoed_ids(bad), ["9007199254740993.0"]);
    // The last id member wins, as in the first parse.
    let twice = r#"{"jsonrpc":"2.0","id":1,"method":"a.b","id":0.1}"#;
    assert_eq!(echoed_ids(twice), ["0.1"]);
}

/// A single request is read from the frame's text without the whitespace
/// around it (it is not split out as a batch's items are).
#[test]
fn whitespace_around_a_single_request_is_not_part_of_it() {
    check(
        " \r\n\t{\"jsonrpc\":\"2.0\",\"method\":\"demo.echo\",\"params\":[1],\"id\":7}\n\t ",
        r#"{"request":{"id":7,"method":"demo.echo","params":[1],"jobId":null,"options":null,"ack":false}}"#,
    );
    check(
        "\n \"x\" \r",
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: a request must be an object"}}"#,
    );
    check(
        " {\"jsonrpc\":\"2.0\",\"method\":\"demo.echo\"} x",
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: trailing characters at line 1 column 41"}}"#,
    );
}

#[test]
fn params_are_kept_as_the_client_wrote_them() {
    let Incoming::Single(Ok(r)) = parse(
        r#"{"jsonrpc":"2.0","id":1,"method":"s.m","params":{"z":1, "a":[ 2 ,"\u00e9"]}}"#,
        4,
    ) else {
        panic!("not a request")
    };
    // the job's data is this text: key order, spacing and escapes as sent
    assert_eq!(
        r.params.as_ref().map(JsonText::get),
        Some(r#"{"z":1, "a":[ 2 ,"\u00e9"]}"#)
    );
    assert_eq!(r.params_value(), Some(json!({"z": 1, "a": [2, "é"]})));
}

#[test]
fn a_member_given_twice_counts_once_the_last_as_in_a_tree() {
    check(
        r#"{"jsonrpc":"2.0","id":1,"method":"a.b","method":"s.m","params":[1],"params":{"k":2}}"#,
        r#"{"request":{"id":1,"method":"s.m","params":{"k":2},"jobId":null,"options":null,"ack":false}}"#,
    );
    check(
        r#"{"jsonrpc":"2.0","id":1,"method":"s.m","params":{"k":2},"params":3}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params: params must be an object or an array"}}"#,
    );
    check(
        r#"{"jsonrpc":"2.0","id":1,"method":"s.m","params":null}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params: params must be an object or an array"}}"#,
    );
    check(
        r#"{"jsonrpc":"2.0","jsonrpc":"1.0","id":"x","method":"s.m"}"#,
        r#"{"jsonrpc":"2.0","id":"x","error":{"code":-32600,"message":"Invalid Request: jsonrpc must be \"2.0\""}}"#,
    );
    check(
        r#"{"jsonrpc":"2\u002e0","id":"x","method":"s.m","unknown":{"deep":[1,{"x":null}]}}"#,
        r#"{"request":{"id":"x","method":"s.m","params":null,"jobId":null,"options":null,"ack":false}}"#,
    );
}

#[test]
fn text_a_tree_refuses_is_a_parse_error_though_params_are_kept_as_text() {
    check(
        r#"{"jsonrpc":"2.0","id":1,"method":"s.m","params":{"n":1e400}}"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: number out of range at line 1 column 58"}}"#,
    );
    check(
        r#"[{"jsonrpc":"2.0","id":1,"method":"s.m","params":["\ud800"]}]"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: unexpected end of hex escape at line 1 column 58"}}"#,
    );
}
