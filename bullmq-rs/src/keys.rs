//! Every Redis key name, in one place: `<prefix>:<queue>:<suffix>`, BullMQ's
//! layout. Nothing else in the crate formats a key.

use base64::Engine as _;

use crate::state::JobState;

/// The Redis key of a job's hash, `<prefix>:<queue>:<id>`, for code that
/// watches jobs by key (keyspace notifications, for example).
pub fn job_key(prefix: &str, queue: &str, job_id: &str) -> String {
    format!("{prefix}:{queue}:{job_id}")
}

/// Where a job's hash lives, `<prefix>:<queue>:<id>`, for code that watches
/// one job ([`JobSnapshot::read`](crate::JobSnapshot::read), keyspace
/// notifications).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobKey(String);

impl JobKey {
    /// The hash of job `job_id` of `queue` under `prefix`.
    pub fn new(prefix: &str, queue: &str, job_id: &str) -> Self {
        JobKey(job_key(prefix, queue, job_id))
    }

    /// The key itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The channel on which Redis publishes the commands that touch the
    /// hash, in database `db`, when `notify-keyspace-events` has `K`:
    /// `__keyspace@<db>__:<key>`.
    pub fn keyspace_channel(&self, db: i64) -> String {
        format!("__keyspace@{db}__:{}", self.0)
    }
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
    /// `completed`, `failed`, `id` and `repeat`.
    completed: String,
    failed: String,
    id: String,
    repeat: String,
}

/// The keys of a flow parent's children, by where the children are.
#[derive(Debug, Clone)]
pub(crate) struct ChildrenKeys {
    pub(crate) dependencies: String,
    pub(crate) processed: String,
    pub(crate) ignored: String,
    pub(crate) unsuccessful: String,
}

/// The key suffix holding jobs of `state` (`wait` for waiting), as the
/// scripts that list jobs by state are given it; `None` for `Unknown`.
pub(crate) fn state_suffix(state: JobState) -> Option<&'static str> {
    match state {
        JobState::Waiting => Some("wait"),
        JobState::Unknown => None,
        other => Some(other.as_str()),
    }
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
            repeat: format!("{base}repeat"),
            base,
        }
    }

    /// `<prefix>:<queue>:`, so that `base() + job_id` is the job's hash.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// `<prefix>:<queue>:<suffix>`; private, so that every name is one of
    /// the accessors below.
    fn named(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.base)
    }

    /// The `wait` list.
    pub(crate) fn wait(&self) -> &str {
        &self.core[0]
    }

    /// The `active` list.
    pub(crate) fn active(&self) -> &str {
        &self.core[1]
    }

    /// The `events` stream.
    pub(crate) fn events(&self) -> &str {
        &self.core[3]
    }

    /// The `stalled` set.
    pub(crate) fn stalled(&self) -> &str {
        &self.core[4]
    }

    /// The rate limiter's key.
    pub(crate) fn limiter(&self) -> &str {
        &self.core[5]
    }

    /// The `delayed` sorted set.
    pub(crate) fn delayed(&self) -> &str {
        &self.core[6]
    }

    /// The `meta` hash (paused, version, global limits).
    pub(crate) fn meta(&self) -> &str {
        &self.core[7]
    }

    /// The `marker` sorted set workers block on.
    pub(crate) fn marker(&self) -> &str {
        &self.core[9]
    }

    /// The `paused` list (BullMQ <= 5; still passed to `pause`).
    pub(crate) fn paused(&self) -> String {
        self.named("paused")
    }

    /// The `waiting-children` sorted set of flow parents.
    pub(crate) fn waiting_children(&self) -> String {
        self.named("waiting-children")
    }

    /// The key whose expiry paces the stalled-job sweep.
    pub(crate) fn stalled_check(&self) -> String {
        self.named("stalled-check")
    }

    /// The `repeat` sorted set of job schedulers, by next run.
    pub(crate) fn repeat(&self) -> &str {
        &self.repeat
    }

    /// The hash of job scheduler `id`, `repeat:<id>`.
    pub(crate) fn scheduler(&self, id: &str) -> String {
        self.named(&format!("repeat:{id}"))
    }

    /// The list or sorted set holding jobs in `state` (`wait` for
    /// waiting); `None` for `Unknown`.
    pub(crate) fn state(&self, state: JobState) -> Option<String> {
        state_suffix(state).map(|s| self.named(s))
    }

    /// The per-minute metrics hash of finished jobs, `metrics:<kind>`
    /// (`completed` or `failed`), and its list of points.
    pub(crate) fn metrics(&self, kind: &str) -> (String, String) {
        let key = self.named(&format!("metrics:{kind}"));
        let data = format!("{key}:data");
        (key, data)
    }

    /// A job's hash.
    pub(crate) fn job(&self, job_id: &str) -> String {
        format!("{}{job_id}", self.base)
    }

    /// A job's log list.
    pub(crate) fn job_logs(&self, job_id: &str) -> String {
        format!("{}{job_id}:logs", self.base)
    }

    /// A flow parent's children, by where they are: not finished
    /// (`dependencies`, a set), completed with their values (`processed`),
    /// failed and ignored (`failed`), failed the parent (`unsuccessful`).
    pub(crate) fn job_children(&self, job_id: &str) -> ChildrenKeys {
        let job = self.job(job_id);
        ChildrenKeys {
            dependencies: format!("{job}:dependencies"),
            processed: format!("{job}:processed"),
            ignored: format!("{job}:failed"),
            unsuccessful: format!("{job}:unsuccessful"),
        }
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

    /// How the names of named workers begin: `<prefix>:<base64(queue)>:w:`.
    pub(crate) fn named_worker_client_prefix(&self) -> String {
        format!("{}:w:", self.worker_client_name(None))
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
        assert_eq!(k.wait(), "bull:Q:wait");
        assert_eq!(k.meta(), "bull:Q:meta");
        assert_eq!(k.repeat(), "bull:Q:repeat");
        assert_eq!(k.scheduler("s1"), "bull:Q:repeat:s1");
        assert_eq!(k.state(JobState::Waiting).as_deref(), Some("bull:Q:wait"));
        assert_eq!(
            k.state(JobState::WaitingChildren).as_deref(),
            Some("bull:Q:waiting-children")
        );
        assert_eq!(k.state(JobState::Unknown), None);
        assert_eq!(
            k.metrics("failed"),
            (
                "bull:Q:metrics:failed".into(),
                "bull:Q:metrics:failed:data".into()
            )
        );
        assert_eq!(k.job_logs("7"), "bull:Q:7:logs");
        let children = k.job_children("7");
        assert_eq!(children.dependencies, "bull:Q:7:dependencies");
        assert_eq!(children.ignored, "bull:Q:7:failed");
        assert_eq!(k.named_worker_client_prefix(), "bull:UQ==:w:");
        assert_eq!(k.job("7"), "bull:Q:7");
        assert_eq!(k.worker_client_name(Some("w1")), "bull:UQ==:w:w1");
        assert_eq!(k.worker_client_name(None), "bull:UQ==");
        assert_eq!(k.events_client_name(), "bull:UQ==:qe");
        assert_eq!(k.core()[9], "bull:Q:marker");
        assert_eq!(
            [
                k.active(),
                k.events(),
                k.stalled(),
                k.limiter(),
                k.delayed()
            ],
            [
                "bull:Q:active",
                "bull:Q:events",
                "bull:Q:stalled",
                "bull:Q:limiter",
                "bull:Q:delayed"
            ]
        );
        assert_eq!(
            (k.completed(), k.failed(), k.id()),
            ("bull:Q:completed", "bull:Q:failed", "bull:Q:id")
        );
        assert_eq!(QueueKeys::new("{bull}", "a").base(), "{bull}:a:");
        assert_eq!(job_key("bull", "Q", "7"), k.job("7"));
        let key = JobKey::new("bull", "Q", "7");
        assert_eq!(key.as_str(), k.job("7"));
        assert_eq!(key.keyspace_channel(2), "__keyspace@2__:bull:Q:7");
    }
}
