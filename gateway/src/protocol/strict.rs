//! The check a frame passes before it is split into its requests: JSON as
//! `serde_json::Value` accepts it, read without building anything.
//!
//! A request's members are later read as raw text, and raw text passes
//! what a tree refuses: a lone surrogate escape (`"\ud800"`) or a number
//! beyond `f64` (`1e400`). Such params would become job data that the
//! library's workers cannot read, so the frame is refused here, with the
//! error a tree gives.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Fails with `serde_json`'s own error where reading `text` into a
/// `Value` would fail; allocates nothing for well-formed text.
pub(super) fn check(text: &str) -> Result<(), serde_json::Error> {
    serde_json::from_str::<Checked>(text).map(|_| ())
}

/// A JSON value that was read through: every string decoded, every number
/// converted.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_key::<Checked>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// Accepts and refuses what a tree does, with the same message.
    #[test]
    fn agrees_with_a_tree() {
        let texts = [
            r#"{"a":[1,-2,3.5,true,null,{"b":"c\u00e9\n"}]}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00x"}"#,
            r#"{"a":1e400}"#,
            r#"[1e-400, 18446744073709551616, -9223372036854775809]"#,
            r#"{"\ud800":1}"#,
            r#"{"a":1} x"#,
            r#"{"a":"\x"}"#,
            "{\"a\":\"\u{1}\"}",
            &format!("{}1{}", "[".repeat(200), "]".repeat(200)),
            "",
            "  7  ",
        ];
        for text in texts {
            let tree = serde_json::from_str::<Value>(text)
                .map(|_| ())
                .map_err(|e| e.to_string());
            let checked = super::check(text).map_err(|e| e.to_string());
            assert_eq!(checked, tree, "{text}");
        }
    }
}
