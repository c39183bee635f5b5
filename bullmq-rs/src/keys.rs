//! Every Redis key name, in one place: `<prefix>:<queue>:<suffix>`, BullMQ's
//! layout. Nothing else in the crate formats a key.

use base64::Engine as _;

/// The Redis key of a job's hash, `<prefix>:<queue>:<id>`, for code that
/// watches jobs by key (keyspace notifications, for example).
pub fn job_key(prefix: &str, queue: &str, job_id: &str) -> String {
    format!("{prefix}:{queue}:{job_id}")
}

/// The ten keys that begin the KEYS of every queue-state script, in the
/// order `lua/includes/queueKeys.lua` names them.
const CORE: [&str; 10] = [
    "wait",
    "active",
    "prioritized",
    "events",
    "stalled",
    "limiter",
    "delayed",
    "meta",
    "pc",
    "marker",
];

/// The keys of one queue. The names every add and every worker call sends
/// are built once here, not per call.
#[derive(Debug, Clone)]
pub(crate) struct QueueKeys {
    prefix: String,
    queue: String,
    /// `<prefix>:<queue>:`, the job-key prefix passed to most scripts.
    base: String,
    core: [String; 10],
    /// `completed`, `failed` and `id`.
    completed: String,
    failed: String,
    id: String,
}

impl QueueKeys {
    pub(crate) fn new(prefix: &str, queue: &str) -> Self {
        let base = format!("{prefix}:{queue}:");
        QueueKeys {
            prefix: prefix.to_string(),
            queue: queue.to_string(),
            core: CORE.map(|s| format!("{base}{s}")),
            completed: format!("{base}completed"),
            failed: format!("{base}failed"),
            id: format!("{base}id"),
            base,
        }
    }

    /// `<prefix>:<queue>:<suffix>`.
    pub(crate) fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.base)
    }

    /// `<prefix>:<queue>:`, so that `base() + job_id` is the job's hash.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn job(&self, job_id: &str) -> String {
        format!("{}{job_id}", self.base)
    }

    pub(crate) fn job_logs(&self, job_id: &str) -> String {
        format!("{}{job_id}:logs", self.base)
    }

    /// The ten keys that begin the KEYS of every queue-state script (`CORE`).
    pub(crate) fn core(&self) -> &[String; 10] {
        &self.core
    }

    /// The `completed` sorted set.
    pub(crate) fn completed(&self) -> &str {
        &self.completed
    }

    /// The `failed` sorted set.
    pub(crate) fn failed(&self) -> &str {
        &self.failed
    }

    /// The job-id counter.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The qualified queue name `<prefix>:<queue>`, as stored in `opts.parent.queue`.
    pub(crate) fn qualified_name(&self) -> String {
        format!("{}:{}", self.prefix, self.queue)
    }

    /// The name BullMQ gives a worker's blocking connection, which is how
    /// `Queue.getWorkers()` finds workers: `<prefix>:<base64(queue)>[:w:<name>]`.
    pub(crate) fn worker_client_name(&self, worker_name: Option<&str>) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.queue.as_bytes());
        match worker_name {
            Some(name) => format!("{}:{b64}:w:{name}", self.prefix),
            None => format!("{}:{b64}", self.prefix),
        }
    }

    /// The name of a QueueEvents connection: `<prefix>:<base64(queue)>:qe`.
    pub(crate) fn events_client_name(&self) -> String {
        format!("{}:qe", self.worker_client_name(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_bullmq_names() {
        let k = QueueKeys::new("bull", "Q");
        assert_eq!(k.key("wait"), "bull:Q:wait");
        assert_eq!(k.job("7"), "bull:Q:7");
        assert_eq!(k.worker_client_name(Some("w1")), "bull:UQ==:w:w1");
        assert_eq!(k.worker_client_name(None), "bull:UQ==");
        assert_eq!(k.events_client_name(), "bull:UQ==:qe");
        assert_eq!(k.core()[9], "bull:Q:marker");
        assert_eq!(k.core()[0], k.key("wait"));
        assert_eq!(
            (k.completed(), k.failed(), k.id()),
            ("bull:Q:completed", "bull:Q:failed", "bull:Q:id")
        );
        assert_eq!(QueueKeys::new("{bull}", "a").base(), "{bull}:a:");
        assert_eq!(job_key("bull", "Q", "7"), k.job("7"));
    }
}
