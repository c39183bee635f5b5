//! What a flow parent reads of its children (BullMQ's `getChildrenValues`,
//! `getIgnoredChildrenFailures`, `getDependenciesCount`).

use std::collections::HashMap;

use serde_json::Value;

use super::Job;
use crate::error::Result;
use crate::keys::ChildrenKeys;

/// A flow parent's children by where they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DependencyCounts {
    /// Children that completed (their values are kept).
    pub processed: u64,
    /// Children not finished yet.
    pub unprocessed: u64,
    /// Children that failed with `IgnoreDependency` or `ContinueParent`.
    pub ignored: u64,
    /// Children that failed with `FailParent`.
    pub failed: u64,
}

/// A flow parent's children by where they are, with their results.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Dependencies {
    /// Completed children's return values, by child job key.
    pub processed: HashMap<String, Value>,
    /// Keys of children not finished yet.
    pub unprocessed: Vec<String>,
    /// Failure reasons of children whose failure is ignored, by child key.
    pub ignored: HashMap<String, String>,
    /// Keys of children that failed the parent.
    pub failed: Vec<String>,
}

impl Job {
    /// All of this job's children by where they are (BullMQ's
    /// `getDependencies()` without paging), read in one transaction. For a
    /// parent with many children, read pages with
    /// [`get_dependencies_page`](Job::get_dependencies_page).
    pub async fn get_dependencies(&self) -> Result<Dependencies> {
        let children = self.children_keys();
        type Fields = HashMap<String, String>;
        let (processed, unprocessed, ignored, failed): (Fields, Vec<String>, Fields, Vec<String>) =
            redis::pipe()
                .atomic()
                .hgetall(children.processed)
                .smembers(children.dependencies)
                .hgetall(children.ignored)
                .zrange(children.unsuccessful, 0, -1)
                .query_async(&mut self.queue.con())
                .await?;
        Ok(Dependencies {
            processed: json_values(processed),
            unprocessed,
            ignored,
            failed,
        })
    }

    /// The return values of this job's completed children, by child job
    /// key (`bull:<queue>:<id>`); a value that is not JSON is kept as text.
    pub async fn get_children_values(&self) -> Result<HashMap<String, Value>> {
        let raw: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.children_keys().processed)
            .query_async(&mut self.queue.con())
            .await?;
        Ok(json_values(raw))
    }

    /// The failure reasons of children whose failure this job ignores, by
    /// child job key.
    pub async fn get_ignored_children_failures(&self) -> Result<HashMap<String, String>> {
        let raw: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.children_keys().ignored)
            .query_async(&mut self.queue.con())
            .await?;
        Ok(raw)
    }

    /// How many children are done, pending, ignored and failed (read
    /// together, in one transaction).
    pub async fn get_dependencies_count(&self) -> Result<DependencyCounts> {
        let children = self.children_keys();
        let (processed, unprocessed, ignored, failed): (u64, u64, u64, u64) = redis::pipe()
            .atomic()
            .hlen(children.processed)
            .scard(children.dependencies)
            .hlen(children.ignored)
            .zcard(children.unsuccessful)
            .query_async(&mut self.queue.con())
            .await?;
        Ok(DependencyCounts {
            processed,
            unprocessed,
            ignored,
            failed,
        })
    }

    /// The job hash's key.
    pub(super) fn key(&self) -> String {
        self.queue.keys().job(&self.id)
    }

    /// The keys of this job's children, by where they are.
    pub(super) fn children_keys(&self) -> ChildrenKeys {
        self.queue.keys().job_children(&self.id)
    }
}

impl Job {
    /// Called by a handler that added children to this job (with
    /// `JobOptions::parent`): moves the job to `waiting-children` while it
    /// has pending children (or while `child`, a child job key, is one).
    /// Returns true when it moved: the handler then returns
    /// [`JobError::waiting_children`](crate::JobError::waiting_children),
    /// and the job runs again once its children are done. False: nothing
    /// to wait for, the handler goes on.
    pub async fn move_to_waiting_children(&self, child: Option<&str>) -> Result<bool> {
        let k = self.queue.keys();
        let code: i64 = crate::script::MOVE_TO_WAITING_CHILDREN
            .call()
            .key(k.active())
            .key(k.waiting_children())
            .key(self.key())
            .key(k.stalled())
            .key(k.events())
            .arg(self.token.as_deref().unwrap_or("0"))
            .arg(child.unwrap_or(""))
            .arg(crate::time::now_ms())
            .arg(&self.id)
            .invoke(&mut self.queue.con())
            .await?;
        // 0 moved, 1 nothing to wait for
        crate::error::check(code, "moveToWaitingChildren", &self.id).map(|c| c == 0)
    }
}

/// Stored return values as JSON; a value that is not JSON is kept as text.
pub(super) fn json_values(raw: HashMap<String, String>) -> HashMap<String, Value> {
    raw.into_iter()
        .map(|(k, v)| {
            let value = serde_json::from_str(&v).unwrap_or(Value::String(v));
            (k, value)
        })
        .collect()
}
