//! What reaches the logs from clients: escaped, truncated and rate-limited.
//!
//! A token's `sub`, a method name or a job key is chosen by the client. Put
//! in a log line as is, a newline in it forges a line of its own and a 20 KB
//! value writes a 20 KB line. [`Untrusted`] prints such a value with control
//! characters escaped and at most [`Untrusted::MAX_CHARS`] characters.
//! [`Throttle`] lets a log line that any anonymous client can trigger (a
//! refused upgrade) be written a bounded number of times per second.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A client-chosen string, safe to print in a log line.
#[derive(Debug, Clone, Copy)]
pub struct Untrusted<'a>(pub &'a str);

impl Untrusted<'_> {
    /// Characters printed before the rest is cut.
    pub const MAX_CHARS: usize = 128;
}

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (printed, (at, c)) in self.0.char_indices().enumerate() {
            if printed == Self::MAX_CHARS {
                return write!(f, "...(+{} bytes)", self.0.len() - at);
            }
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_fmt(format_args!("{c}"))?;
            }
        }
        Ok(())
    }
}

/// Lets at most `per_second` events through in each wall-clock second and
/// counts the rest, so the next line written can say how many were dropped.
#[derive(Debug)]
pub struct Throttle {
    per_second: u64,
    /// The second being counted (seconds since the epoch).
    second: AtomicU64,
    /// Events seen in `second`.
    seen: AtomicU64,
    /// Events dropped since the last one let through.
    dropped: AtomicU64,
}

impl Throttle {
    /// A throttle letting `per_second` events through each second.
    pub const fn new(per_second: u64) -> Self {
        Throttle {
            per_second,
            second: AtomicU64::new(0),
            seen: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// `Some(dropped since the last event let through)` when this event may be
    /// logged, `None` when it is over the rate (and counted as dropped).
    pub fn admit(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.second.swap(now, Ordering::Relaxed) != now {
            self.seen.store(0, Ordering::Relaxed);
        }
        if self.seen.fetch_add(1, Ordering::Relaxed) < self.per_second {
            Some(self.dropped.swap(0, Ordering::Relaxed))
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_forge_a_line() {
        let forged = "alice\n2026-01-01T00:00:00Z INFO admin logged in\r\u{1b}[31m";
        let shown = Untrusted(forged).to_string();
        assert!(!shown.contains('\n') && !shown.contains('\r') && !shown.contains('\u{1b}'));
        assert!(shown.starts_with("alice\\n2026"), "{shown}");
    }

    #[test]
    fn long_values_are_cut_with_what_was_left_out() {
        let long = "é".repeat(10_000);
        let shown = Untrusted(&long).to_string();
        assert!(shown.starts_with(&"é".repeat(Untrusted::MAX_CHARS)));
        assert!(
            shown.ends_with(&format!("...(+{} bytes)", 2 * (10_000 - 128))),
            "{shown}"
        );
        assert_eq!(Untrusted("short").to_string(), "short");
    }

    #[test]
    fn the_throttle_admits_a_bounded_number_per_second() {
        let t = Throttle::new(3);
        let admitted = (0..1000).filter(|_| t.admit().is_some()).count();
        // The loop may straddle a second boundary: at most two windows' worth.
        assert!((3..=6).contains(&admitted), "{admitted}");
    }
}
