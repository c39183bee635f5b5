//! JSON a job stored, kept as its text: a watcher that only forwards a
//! return value (the gateway, to its client) copies it, and never builds
//! and serializes again a tree it does not look into.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// Well-formed JSON text (one value, no surrounding whitespace).
/// Serializes as that text, unchanged.
#[derive(Clone)]
pub struct JsonText(Box<RawValue>);

impl JsonText {
    /// The text when it is JSON; otherwise the JSON string of it (BullMQ
    /// keeps what a worker returned as `JSON.stringify` wrote it, and a
    /// value written by hand may be plain text).
    pub fn parse_or_string(text: &str) -> JsonText {
        match serde_json::from_str::<Box<RawValue>>(text) {
            Ok(raw) => JsonText(raw),
            Err(_) => JsonText::from_value(&Value::String(text.to_string())),
        }
    }

    /// The text of `value`.
    pub fn from_value(value: &Value) -> JsonText {
        // a `Value` always serializes, and to valid JSON
        JsonText(
            serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned()),
        )
    }

    /// Takes JSON text already checked by a parser (a field of a message
    /// read with `serde_json`).
    pub fn from_raw(raw: &RawValue) -> JsonText {
        JsonText(raw.to_owned())
    }

    /// The text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The value, parsed.
    pub fn to_value(&self) -> Value {
        // the text was checked when it was made
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl From<Value> for JsonText {
    fn from(value: Value) -> Self {
        JsonText::from_value(&value)
    }
}

/// Equal when the texts are (`{"a":1}` and `{ "a": 1 }` differ).
impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_json_as_written_and_quotes_what_is_not_json() {
        assert_eq!(
            JsonText::parse_or_string(r#"{"b":1,"a":[2]}"#).get(),
            r#"{"b":1,"a":[2]}"#
        );
        assert_eq!(JsonText::parse_or_string(" 7 ").get(), "7");
        assert_eq!(JsonText::parse_or_string("plain").get(), r#""plain""#);
        assert_eq!(JsonText::parse_or_string(r#"{"a":"#).get(), r#""{\"a\":""#);
        assert_eq!(JsonText::parse_or_string("").get(), r#""""#);
        assert_eq!(
            JsonText::from(json!({"x": [1, "y"]})).to_value(),
            json!({"x": [1, "y"]})
        );
    }

    #[test]
    fn serializes_as_its_text_inside_other_json() {
        let text = JsonText::parse_or_string(r#"{"k":[1,2]}"#);
        #[derive(Serialize)]
        struct Outer<'a> {
            result: &'a JsonText,
        }
        let out = serde_json::to_string(&Outer { result: &text }).unwrap();
        assert_eq!(out, r#"{"result":{"k":[1,2]}}"#);
    }
}
