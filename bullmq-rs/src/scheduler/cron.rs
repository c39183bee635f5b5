//! When a cron pattern matches next, in the scheduler's zone, as BullMQ's
//! `cron-parser` computes it.

use chrono::{DateTime, Local, Offset, TimeZone};
use croner::parser::{CronParser, Seconds};

use crate::error::{Error, Result};

/// When a cron rule runs next, as BullMQ's repeat strategy decides: at the
/// first match after `from` (and not before `start`), or `now` when
/// `immediately`, never before `from`; `None` when no run is left before
/// `end`.
pub(super) fn next_cron_run(
    pattern: &str,
    tz: Option<&str>,
    immediately: bool,
    start: Option<i64>,
    end: Option<i64>,
    now: i64,
    from: i64,
) -> Result<Option<i64>> {
    let next = if immediately {
        Some(now)
    } else {
        next_cron_millis(pattern, tz, from.max(start.unwrap_or(0)))?
    };
    Ok(next
        .filter(|t| end.is_none_or(|end| *t <= end))
        .map(|t| t.max(from)))
}

/// The first time strictly after `after_ms` (ms since the epoch) that the
/// cron `pattern` matches (5 fields, or 6 with seconds first), in zone `tz`
/// (an IANA name) or else the local zone, as BullMQ's cron-parser computes
/// a scheduler's next run. `None` when the pattern never matches again.
pub fn next_cron_millis(pattern: &str, tz: Option<&str>, after_ms: i64) -> Result<Option<i64>> {
    let invalid = |reason: String| Error::InvalidInput {
        what: "cron pattern",
        reason,
    };
    let cron = CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(pattern)
        .map_err(|e| invalid(format!("{pattern:?}: {e}")))?;
    fn next_in<Z: TimeZone>(cron: &croner::Cron, zone: Z, after_ms: i64) -> Option<i64> {
        let after: DateTime<Z> = zone.timestamp_millis_opt(after_ms).single()?;
        let next = cron.find_next_occurrence(&after, false).ok()?;
        if cron.is_time_matching(&next).unwrap_or(true) {
            return Some(next.timestamp_millis());
        }
        // The pattern names a wall time the clocks skip (a DST gap), and
        // croner gave the gap's end. cron-parser keeps the wall time and
        // reads it with the offset from before the gap (02:30 in a 02:00 to
        // 03:00 gap runs at 03:30), so the schedule stays BullMQ's.
        let wanted = cron
            .find_next_occurrence(&after.naive_local(), false)
            .ok()?;
        let before = zone
            .timestamp_millis_opt(next.timestamp_millis() - 1)
            .single()?;
        let offset = i64::from(before.offset().fix().local_minus_utc());
        Some(wanted.and_utc().timestamp_millis() - offset * 1000)
    }
    Ok(match tz {
        Some(name) => {
            let zone: chrono_tz::Tz = name
                .parse()
                .map_err(|_| invalid(format!("unknown time zone {name:?}")))?;
            next_in(&cron, zone, after_ms)
        }
        None => next_in(&cron, Local, after_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_with_seconds_and_zone() {
        // 2026-11-27T10:00:06.073Z; every 2 s -> 10:00:08.000
        let t = 1_795_773_606_073;
        assert_eq!(
            next_cron_millis("*/2 * * * * *", Some("Europe/Madrid"), t).unwrap(),
            Some(1_795_773_608_000)
        );
        // an exact match is not "after"
        assert_eq!(
            next_cron_millis("*/2 * * * * *", None, 1_795_773_608_000).unwrap(),
            Some(1_795_773_610_000)
        );
        // five fields: minutes; the zone decides the hour
        let at = next_cron_millis("0 12 * * *", Some("Europe/Madrid"), t)
            .unwrap()
            .unwrap();
        assert_eq!(at, 1_795_777_200_000); // 12:00 in Madrid (UTC+1) = 11:00Z
                                           // 02:30 does not exist in New York on 2027-03-14 (clocks skip 02:00 to
                                           // 03:00): like cron-parser, run at 03:30 EDT = 07:30Z
        assert_eq!(
            next_cron_millis("30 2 * * *", Some("America/New_York"), 1_805_004_000_000).unwrap(),
            Some(1_805_009_400_000)
        );
        assert!(next_cron_millis("not a pattern", None, t).is_err());
        assert!(next_cron_millis("* * * * *", Some("Mars/Olympus"), t).is_err());
    }
}
