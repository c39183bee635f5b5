//! Numeric request ids echoed exactly as sent.
//!
//! `serde_json::Number` keeps integers that fit in 64 bits exactly, but reads
//! any other number (`1.50`, `1e3`, `123456789012345678901234567890`) as an
//! `f64`, which would come back as `1.5`, `1000.0` or
//! `1.2345678901234568e+29`. JSON-RPC echoes the id the client sent, so for
//! those ids the frame is read a second time for the ids' own text. Frames
//! with string or integer ids (all clients we know of) never pay for it.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// The text of a numeric id, written back verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NumberText(Box<str>);

impl NumberText {
    /// The id as the client wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for NumberText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The text came out of serde_json's own parser as one number, so it
        // is valid JSON; the check is what RawValue requires anyway.
        let raw = RawValue::from_string(self.0.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// The raw `id` member of each request in `text`, in order (one entry for a
/// single request, one per element for a batch); `None` where an element is
/// not an object or has no numeric `id`. `None` overall when `text` cannot be
/// read again (it parsed once, so that does not happen).
pub fn raw_numeric_ids(text: &str) -> Option<Vec<Option<NumberText>>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        serde_json::from_str::<Vec<IdProbe>>(trimmed)
            .ok()
            .map(|v| v.into_iter().map(|p| p.0).collect())
    } else {
        serde_json::from_str::<IdProbe>(trimmed)
            .ok()
            .map(|p| vec![p.0])
    }
}

/// One element of a frame, reduced to its numeric `id`'s text.
struct IdProbe(Option<NumberText>);

impl<'de> Deserialize<'de> for IdProbe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ProbeVisitor)
    }
}

struct ProbeVisitor;

impl<'de> Visitor<'de> for ProbeVisitor {
    type Value = IdProbe;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IdProbe, A::Error> {
        let mut id = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "id" {
                // The last `id` wins, as it does for serde_json's map.
                let raw: Box<RawValue> = map.next_value()?;
                let text = raw.get();
                id = text
                    .starts_with(|c: char| c == '-' || c.is_ascii_digit())
                    .then(|| NumberText(text.into()));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(IdProbe(id))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IdProbe, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(IdProbe(None))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<IdProbe, E> {
        Ok(IdProbe(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<IdProbe, E> {
        Ok(IdProbe(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<IdProbe, E> {
        Ok(IdProbe(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<IdProbe, E> {
        Ok(IdProbe(None))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<IdProbe, E> {
        Ok(IdProbe(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<IdProbe, E> {
        Ok(IdProbe(None))
    }
}
