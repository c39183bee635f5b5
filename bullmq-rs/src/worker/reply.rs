//! Reads the reply `fetchJobs` and `finishJobs` share. The scripts pack it
//! with Redis' `cmsgpack` into one MessagePack array:
//! `[codes] (finishJobs only), rateLimitTtl, nextDelayedTimestamp, blocked,
//! id1, hash1, ...`, each hash a flat array of fields and values. One bulk
//! string is much cheaper for the client to read than a RESP value per hash
//! field (callgrind: RESP parsing was a quarter of a concurrency-1 worker's
//! instructions), and costs Redis no more than the RESP reply did.

use rmp::Marker;

use crate::error::{Error, Result};
use crate::job::Job;
use crate::queue::Queue;

/// Jobs handed to this worker, and why there were not more.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    pub(crate) jobs: Vec<Job>,
    /// ms until the rate limit allows another job (0 = not limited).
    pub(crate) rate_limit_ttl: i64,
    /// When the next delayed job is due (ms since the epoch, 0 = none).
    pub(crate) next_delayed: f64,
    /// The queue is paused or at its global concurrency.
    pub(crate) blocked: bool,
    /// Per outcome sent: whether the script recorded it (filled by the
    /// caller from the codes).
    pub(crate) recorded: Vec<bool>,
}

/// One MessagePack value as `cmsgpack` writes a Lua value.
#[derive(Debug, PartialEq)]
enum Item<'a> {
    Int(i64),
    Float(f64),
    Text(&'a [u8]),
    /// An array of this many items, which follow.
    Array(usize),
    Nil,
    Bool(bool),
}

/// Reads a packed reply front to back.
struct Packed<'a> {
    rest: &'a [u8],
}

fn malformed(what: &str) -> Error {
    Error::protocol(
        "worker script reply",
        format!("malformed MessagePack: {what}"),
    )
}

impl<'a> Packed<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(malformed("truncated"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    /// A big-endian unsigned integer of `n` bytes (1, 2, 4 or 8).
    fn uint(&mut self, n: usize) -> Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    }

    fn next(&mut self) -> Result<Item<'a>> {
        let byte = self.take(1)?[0];
        let int = |v: u64| {
            i64::try_from(v)
                .map(Item::Int)
                .map_err(|_| malformed("integer out of range"))
        };
        Ok(match Marker::from_u8(byte) {
            Marker::FixPos(n) => Item::Int(i64::from(n)),
            Marker::FixNeg(n) => Item::Int(i64::from(n)),
            Marker::U8 => int(self.uint(1)?)?,
            Marker::U16 => int(self.uint(2)?)?,
            Marker::U32 => int(self.uint(4)?)?,
            Marker::U64 => int(self.uint(8)?)?,
            Marker::I8 => Item::Int(i64::from(self.uint(1)? as u8 as i8)),
            Marker::I16 => Item::Int(i64::from(self.uint(2)? as u16 as i16)),
            Marker::I32 => Item::Int(i64::from(self.uint(4)? as u32 as i32)),
            Marker::I64 => Item::Int(self.uint(8)? as i64),
            Marker::F32 => Item::Float(f64::from(f32::from_bits(self.uint(4)? as u32))),
            Marker::F64 => Item::Float(f64::from_bits(self.uint(8)?)),
            Marker::FixStr(n) => Item::Text(self.take(usize::from(n))?),
            Marker::Str8 | Marker::Bin8 => {
                let n = self.uint(1)? as usize;
                Item::Text(self.take(n)?)
            }
            Marker::Str16 | Marker::Bin16 => {
                let n = self.uint(2)? as usize;
                Item::Text(self.take(n)?)
            }
            Marker::Str32 | Marker::Bin32 => {
                let n = self.uint(4)? as usize;
                Item::Text(self.take(n)?)
            }
            Marker::FixArray(n) => Item::Array(usize::from(n)),
            Marker::Array16 => Item::Array(self.uint(2)? as usize),
            Marker::Array32 => Item::Array(self.uint(4)? as usize),
            Marker::Null => Item::Nil,
            Marker::True => Item::Bool(true),
            Marker::False => Item::Bool(false),
            other => return Err(malformed(&format!("unexpected {other:?}"))),
        })
    }

    fn array(&mut self, what: &str) -> Result<usize> {
        match self.next()? {
            Item::Array(n) => Ok(n),
            other => Err(malformed(&format!(
                "{what}: expected an array, got {other:?}"
            ))),
        }
    }

    /// Room to reserve for `n` items that follow: each takes a byte at
    /// least, so a length the reply cannot hold reserves no more than it can.
    fn room(&self, n: usize) -> usize {
        n.min(self.rest.len())
    }

    fn int(&mut self, what: &str) -> Result<i64> {
        match self.next()? {
            Item::Int(n) => Ok(n),
            Item::Float(f) => Ok(f as i64),
            Item::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| malformed(what)),
            Item::Nil | Item::Bool(false) => Ok(0),
            other => Err(malformed(&format!(
                "{what}: expected a number, got {other:?}"
            ))),
        }
    }

    fn float(&mut self, what: &str) -> Result<f64> {
        match self.next()? {
            Item::Int(n) => Ok(n as f64),
            Item::Float(f) => Ok(f),
            Item::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| malformed(what)),
            other => Err(malformed(&format!(
                "{what}: expected a number, got {other:?}"
            ))),
        }
    }

    fn text(&mut self, what: &str) -> Result<String> {
        match self.next()? {
            Item::Int(n) => Ok(n.to_string()),
            Item::Text(t) => Ok(as_str(t, what)?.to_string()),
            other => Err(malformed(&format!("{what}: expected text, got {other:?}"))),
        }
    }

    /// Text borrowed from the reply.
    fn text_ref(&mut self, what: &str) -> Result<&'a str> {
        match self.next()? {
            Item::Text(t) => as_str(t, what),
            other => Err(malformed(&format!("{what}: expected text, got {other:?}"))),
        }
    }
}

fn as_str<'a>(t: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(t).map_err(|_| malformed(&format!("{what}: not UTF-8")))
}

/// Parses a packed `finishJobs` (`with_codes`) or `fetchJobs` reply: the
/// finish codes (one per outcome sent; empty for `fetchJobs`) and the jobs
/// taken, each given the next of `tokens`.
pub(crate) fn parse_reply(
    queue: &Queue,
    packed: &[u8],
    with_codes: bool,
    tokens: &mut dyn FnMut() -> String,
) -> Result<(Vec<i64>, Fetched)> {
    let mut rd = Packed { rest: packed };
    let mut items = rd.array("reply")?;
    let mut codes = Vec::new();
    if with_codes {
        let n = rd.array("codes")?;
        codes.reserve(rd.room(n));
        for _ in 0..n {
            codes.push(rd.int("code")?);
        }
        items = items.checked_sub(1).ok_or_else(|| malformed("no codes"))?;
    }
    if items < 3 || (items - 3) % 2 != 0 {
        return Err(malformed(&format!("{items} items after the codes")));
    }
    let mut fetched = Fetched {
        jobs: Vec::with_capacity(rd.room((items - 3) / 2)),
        rate_limit_ttl: rd.int("rate limit ttl")?,
        next_delayed: rd.float("next delayed")?,
        blocked: rd.int("blocked")? == 1,
        recorded: Vec::new(),
    };
    for _ in 0..(items - 3) / 2 {
        let id = rd.text("job id")?;
        let n = rd.array("job hash")? / 2;
        let mut fields = Vec::with_capacity(rd.room(n));
        for _ in 0..n {
            fields.push((rd.text_ref("job field")?, rd.text("job value")?));
        }
        let mut job = Job::from_fields(queue.clone(), id, fields);
        job.token = Some(tokens());
        fetched.jobs.push(job);
    }
    Ok((codes, fetched))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_cmsgpack_writes() {
        // [[0, -3], 1500, "0", 1] packed as Redis' cmsgpack packs it, then a
        // 300-byte text (str16) and a 40-byte one (str8)
        let mut b = vec![0x94, 0x92, 0x00, 0xfd, 0xcd, 0x05, 0xdc, 0xa1, b'0', 0x01];
        let mut rd = Packed { rest: &b };
        assert_eq!(rd.array("").unwrap(), 4);
        assert_eq!(rd.array("").unwrap(), 2);
        assert_eq!((rd.int("").unwrap(), rd.int("").unwrap()), (0, -3));
        assert_eq!(rd.int("").unwrap(), 1500);
        assert_eq!(rd.float("").unwrap(), 0.0);
        assert_eq!(rd.int("").unwrap(), 1);
        assert!(
            rd.next().is_err(),
            "reading past the end is an error, not a panic"
        );
        b = vec![0xda, 0x01, 0x2c];
        b.extend(std::iter::repeat_n(b'x', 300));
        b.extend([0xd9, 40]);
        b.extend(std::iter::repeat_n(b'y', 40));
        b.extend([0xd0, 0x80, 0xcb]);
        b.extend(1.5f64.to_bits().to_be_bytes());
        let mut rd = Packed { rest: &b };
        assert_eq!(rd.text("").unwrap().len(), 300);
        assert_eq!(rd.text("").unwrap(), "y".repeat(40));
        assert_eq!(rd.int("").unwrap(), -128);
        assert_eq!(rd.float("").unwrap(), 1.5);
    }

    #[test]
    fn a_length_the_reply_cannot_hold_reserves_no_more_than_it_can() {
        // an array claiming 2^32 - 1 jobs, and one claiming none at all
        let huge = [0xdd, 0xff, 0xff, 0xff, 0xff, 0x00];
        let mut rd = Packed { rest: &huge };
        assert_eq!(rd.array("").unwrap(), u32::MAX as usize);
        assert_eq!(rd.room(u32::MAX as usize), 1);
        let mut rd = Packed { rest: &[0x90] };
        assert_eq!(rd.array("").unwrap(), 0);
    }

    #[test]
    fn truncated_input_is_an_error() {
        for b in [&[0xda, 0x01][..], &[0xa5, b'a'], &[0xcd, 0x05], &[0xc1]] {
            assert!(Packed { rest: b }.next().is_err(), "{b:?}");
        }
    }
}
