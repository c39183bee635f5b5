//! Reading a flow parent's children a page at a time (BullMQ's
//! `getDependencies({processed, unprocessed, ignored, failed})` with cursors),
//! for parents with more children than one reply should carry.

use std::collections::HashMap;

use redis::Value as RedisValue;
use serde_json::Value;

use super::children::json_values;
use super::Job;
use crate::error::{Error, Result};

/// Where a page starts and about how many entries it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 0 for the first page, then the `next_cursor` of the page before.
    pub cursor: u64,
    /// How many entries to read: a hint to Redis for the three scanned
    /// kinds (`HSCAN`/`SSCAN` `COUNT`: a small set comes back whole), exact
    /// for `failed`. At least 1.
    pub count: u64,
}

impl Default for PageRequest {
    /// The first page of 20, BullMQ's default.
    fn default() -> Self {
        PageRequest {
            cursor: 0,
            count: 20,
        }
    }
}

impl PageRequest {
    /// The page that starts at `cursor`, of about `count` entries.
    pub fn at(cursor: u64, count: u64) -> Self {
        PageRequest { cursor, count }
    }
}

/// Which kinds of children to read a page of; kinds left `None` are not read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DependencyPages {
    /// Completed children and their values (`<job>:processed`).
    pub processed: Option<PageRequest>,
    /// Children not finished yet (`<job>:dependencies`).
    pub unprocessed: Option<PageRequest>,
    /// Children whose failure is ignored, with the reasons (`<job>:failed`).
    pub ignored: Option<PageRequest>,
    /// Children that failed the parent (`<job>:unsuccessful`, by offset).
    pub failed: Option<PageRequest>,
}

impl DependencyPages {
    /// Reads a page of completed children.
    pub fn processed(mut self, page: PageRequest) -> Self {
        self.processed = Some(page);
        self
    }

    /// Reads a page of unfinished children.
    pub fn unprocessed(mut self, page: PageRequest) -> Self {
        self.unprocessed = Some(page);
        self
    }

    /// Reads a page of children whose failure is ignored.
    pub fn ignored(mut self, page: PageRequest) -> Self {
        self.ignored = Some(page);
        self
    }

    /// Reads a page of children that failed the parent.
    pub fn failed(mut self, page: PageRequest) -> Self {
        self.failed = Some(page);
        self
    }
}

/// One page of entries, and where the next one starts.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The entries of this page.
    pub items: T,
    /// The cursor of the next page; 0 when this page was the last.
    pub next_cursor: u64,
}

/// The pages asked for; kinds not asked for are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct DependenciesPage {
    /// Completed children's return values, by child job key.
    pub processed: Option<Page<HashMap<String, Value>>>,
    /// Keys of children not finished yet.
    pub unprocessed: Option<Page<Vec<String>>>,
    /// Failure reasons of children whose failure is ignored, by child key.
    pub ignored: Option<Page<HashMap<String, String>>>,
    /// Keys of children that failed the parent.
    pub failed: Option<Page<Vec<String>>>,
}

impl Job {
    /// One page of each kind of child `pages` names, read in one
    /// transaction. Pages of `processed`, `unprocessed` and `ignored` follow
    /// Redis' scan cursors, as BullMQ's do (the same cursor gives BullMQ and
    /// us the same page); a page of `failed` is by offset in the sorted set.
    /// (BullMQ 6.7.0 reads `count - 1` as that page's last index whatever
    /// the cursor, so its `failed` pages after the first are empty.) A
    /// kind's pages together hold each of its entries at least once; scans
    /// may return an entry twice if the set changes between pages.
    pub async fn get_dependencies_page(&self, pages: DependencyPages) -> Result<DependenciesPage> {
        let kinds = [
            pages.processed,
            pages.unprocessed,
            pages.ignored,
            pages.failed,
        ];
        if kinds.iter().flatten().any(|p| p.count == 0) {
            return Err(Error::invalid(
                "dependency page",
                "a page must hold at least one entry (count >= 1)",
            ));
        }
        let children = self.children_keys();
        let mut pipe = redis::pipe();
        pipe.atomic();
        if let Some(p) = pages.processed {
            pipe.cmd("HSCAN")
                .arg(&children.processed)
                .arg(p.cursor)
                .arg("COUNT")
                .arg(p.count);
        }
        if let Some(p) = pages.unprocessed {
            pipe.cmd("SSCAN")
                .arg(&children.dependencies)
                .arg(p.cursor)
                .arg("COUNT")
                .arg(p.count);
        }
        if let Some(p) = pages.ignored {
            pipe.cmd("HSCAN")
                .arg(&children.ignored)
                .arg(p.cursor)
                .arg("COUNT")
                .arg(p.count);
        }
        if let Some(p) = pages.failed {
            let last = p.cursor.saturating_add(p.count - 1);
            pipe.cmd("ZRANGE")
                .arg(&children.unsuccessful)
                .arg(p.cursor)
                .arg(last);
        }
        let replies: Vec<RedisValue> = pipe.query_async(&mut self.queue.con()).await?;
        let mut replies = replies.into_iter();
        let mut next = || {
            replies
                .next()
                .ok_or_else(|| Error::protocol("dependency page", "a reply is missing"))
        };
        let mut out = DependenciesPage::default();
        if pages.processed.is_some() {
            let (next_cursor, flat) = scanned(next()?)?;
            out.processed = Some(Page {
                items: json_values(pair_up(flat)),
                next_cursor,
            });
        }
        if pages.unprocessed.is_some() {
            let (next_cursor, items) = scanned(next()?)?;
            out.unprocessed = Some(Page { items, next_cursor });
        }
        if pages.ignored.is_some() {
            let (next_cursor, flat) = scanned(next()?)?;
            out.ignored = Some(Page {
                items: pair_up(flat),
                next_cursor,
            });
        }
        if let Some(p) = pages.failed {
            let items: Vec<String> = redis::from_redis_value(next()?)
                .map_err(|e| Error::protocol("dependency page", e.to_string()))?;
            let next_cursor = if (items.len() as u64) < p.count {
                0
            } else {
                p.cursor + p.count
            };
            out.failed = Some(Page { items, next_cursor });
        }
        Ok(out)
    }
}

/// A `SCAN`-family reply: the next cursor and the entries.
fn scanned(v: RedisValue) -> Result<(u64, Vec<String>)> {
    let (cursor, items): (String, Vec<String>) = redis::from_redis_value(v)
        .map_err(|e| Error::protocol("dependency page", e.to_string()))?;
    let cursor = cursor
        .parse()
        .map_err(|_| Error::protocol("dependency page", format!("cursor {cursor:?}")))?;
    Ok((cursor, items))
}

/// `[field, value, ...]` into a map.
fn pair_up(flat: Vec<String>) -> HashMap<String, String> {
    super::pairs(flat).collect()
}
