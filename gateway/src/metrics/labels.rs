//! Which method names get their own `method` label. A client picks the
//! method name, so labels are bounded: built-ins and configured methods
//! always get theirs, other names of open services get one while there is
//! room, and everything else (too long, odd bytes, no room) is `other`.

use crate::FastSet;
use std::sync::Mutex;

/// Longest label kept, bytes.
pub const MAX_LABEL_BYTES: usize = 64;
/// The label of every method that gets none of its own.
pub const OTHER: &str = "other";
/// Labels the session uses for what never reached a method.
const FIXED: [&str; 4] = ["invalid", "limited", "unknown", OTHER];
/// Room for names outside the known ones when none is configured.
const DEFAULT_EXTRA: usize = 64;

/// The label policy of one gateway.
#[derive(Debug)]
pub struct MethodLabels {
    known: FastSet<String>,
    max_extra: usize,
    extra: Mutex<FastSet<String>>,
}

impl Default for MethodLabels {
    fn default() -> Self {
        MethodLabels::new(Vec::new(), DEFAULT_EXTRA)
    }
}

/// True for 1 to 64 bytes of `[A-Za-z0-9._:-]`: a label that needs no
/// escaping and keeps a scrape small.
pub fn is_valid(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_BYTES
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

impl MethodLabels {
    /// `known` always keep their label; up to `max_extra` other valid
    /// names get one, first come first served.
    pub fn new(known: impl IntoIterator<Item = String>, max_extra: usize) -> Self {
        let mut known: FastSet<String> = known.into_iter().filter(|m| is_valid(m)).collect();
        known.extend(FIXED.iter().map(|s| s.to_string()));
        MethodLabels {
            known,
            max_extra,
            extra: Mutex::new(FastSet::default()),
        }
    }

    /// The label `method` is counted under.
    pub fn label<'a>(&self, method: &'a str) -> &'a str {
        if !is_valid(method) {
            return OTHER;
        }
        if self.known.contains(method) {
            return method;
        }
        let mut extra = self.extra.lock().unwrap_or_else(|p| p.into_inner());
        if extra.contains(method) {
            return method;
        }
        if extra.len() < self.max_extra {
            extra.insert(method.to_string());
            return method;
        }
        OTHER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_stay_and_the_rest_is_bounded() {
        let l = MethodLabels::new(["svc.known".to_string()], 2);
        assert_eq!(l.label("svc.known"), "svc.known");
        assert_eq!(l.label("invalid"), "invalid");
        assert_eq!(l.label("demo.a"), "demo.a");
        assert_eq!(l.label("demo.b"), "demo.b");
        assert_eq!(l.label("demo.c"), OTHER, "no room left");
        assert_eq!(l.label("demo.a"), "demo.a", "already has its label");
        assert_eq!(
            l.label("svc.known"),
            "svc.known",
            "known names need no room"
        );
        for odd in ["", "a\"b", "a b", "é", "a\nb", &"x".repeat(65)] {
            assert_eq!(l.label(odd), OTHER, "{odd:?}");
        }
        assert_eq!(l.label(&"x".repeat(64)), OTHER, "valid but no room");
        assert!(is_valid(&"x".repeat(64)));
    }
}
