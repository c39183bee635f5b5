//! Redis Cluster key slots and the hash-tag rule BullMQ relies on.
//!
//! A queue's scripts touch many of its keys at once, so on a cluster every
//! key of a queue must hash to one slot: the prefix or the queue name holds
//! a hash tag (`{bull}` or `{emails}`), which Redis hashes instead of the
//! whole key. A flow's script touches its parent's and children's queues,
//! so they must share a slot too. Both are checked before anything is
//! written, with an error that says what to change.

use crate::error::{Error, Result};

/// Number of slots of a Redis Cluster.
const SLOTS: u16 = 16384;

/// The part of `key` Redis hashes: the text between the first `{` and the
/// next `}` when it is not empty, otherwise the whole key.
pub(crate) fn hashed_part(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The cluster slot of `key` (CRC16/XMODEM of its hashed part, mod 16384).
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hashed_part(key)) % SLOTS
}

/// The slot every key of queue `name` under `prefix` hashes to, or an
/// error when its keys would spread over slots (no hash tag that ends
/// before the key's own suffix).
pub(crate) fn queue_slot(prefix: &str, name: &str) -> Result<u16> {
    // Every key of the queue starts with this; a hash tag closed inside it
    // is shared by all of them, one that is not closed by then is not.
    let stem = format!("{prefix}:{name}:");
    let tagged = stem.as_bytes();
    let hashed = hashed_part(tagged);
    if hashed.len() == tagged.len() {
        return Err(Error::invalid(
            "queue for Redis Cluster",
            format!(
                "the keys of queue {name:?} under prefix {prefix:?} would spread over cluster slots; \
                 put a hash tag in the prefix (\"{{{prefix}}}\") or the queue name (\"{{{name}}}\") \
                 so that all of a queue's keys live in one slot, as BullMQ requires on a cluster"
            ),
        ));
    }
    Ok(key_slot(tagged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // values from CLUSTER KEYSLOT on a Redis 7 server
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{bull}:emails:wait"), key_slot(b"bull"));
        assert_eq!(key_slot(b"bull"), 9263);
        assert_eq!(key_slot(b"{}x"), key_slot(b"{}x"));
        assert_eq!(hashed_part(b"a{}b{c}"), b"a{}b{c}");
    }

    #[test]
    fn a_queue_needs_a_hash_tag_that_covers_its_keys() {
        assert_eq!(queue_slot("{bull}", "emails").unwrap(), key_slot(b"bull"));
        assert_eq!(queue_slot("bull", "{emails}").unwrap(), key_slot(b"emails"));
        let err = queue_slot("bull", "emails").unwrap_err().to_string();
        assert!(err.contains("{bull}") && err.contains("{emails}"), "{err}");
        // an empty tag hashes the whole key
        assert!(queue_slot("bull{}", "emails").is_err());
    }
}
