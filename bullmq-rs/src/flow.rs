//! Flows: a parent job that waits for its children, possibly in other
//! queues, added in one script call as BullMQ's `FlowProducer.add` adds
//! them. Workers of any language then run the children first and the
//! parent when its children are done (see the finish script).

use serde_json::Value;

use crate::connection::slot;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::keys::QueueKeys;
use crate::options::millis::to_ms;
use crate::options::{validate_job_id, JobOptions, ParentRef};
use crate::queue::{validate_queue_name, NewJob};
use crate::script;
use crate::time::now_ms;

/// One job of a flow and the children it waits for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlowJob {
    /// Job name.
    pub name: String,
    /// The queue the job goes to.
    pub queue_name: String,
    /// Job data.
    pub data: Value,
    /// Options; a child's `on_failure` says what its failing does to this
    /// job's parent.
    pub opts: JobOptions,
    /// Jobs that must finish before this one runs.
    pub children: Vec<FlowJob>,
}

impl FlowJob {
    /// A job with default options and no children.
    pub fn new(name: impl Into<String>, queue_name: impl Into<String>, data: Value) -> Self {
        FlowJob {
            name: name.into(),
            queue_name: queue_name.into(),
            data,
            opts: JobOptions::default(),
            children: Vec::new(),
        }
    }

    /// With these options.
    pub fn opts(mut self, opts: JobOptions) -> Self {
        self.opts = opts;
        self
    }

    /// With one more child.
    pub fn child(mut self, child: FlowJob) -> Self {
        self.children.push(child);
        self
    }
}

/// The ids a flow's jobs got, in the flow's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowNode {
    /// The job's id (its custom id, or a new UUID).
    pub id: String,
    /// Its queue.
    pub queue_name: String,
    /// Its children's nodes, in the order given.
    pub children: Vec<FlowNode>,
}

/// Adds flows; BullMQ's `FlowProducer`.
///
/// ```no_run
/// # async fn demo(conn: bullmq_wire::Connection) -> bullmq_wire::Result<()> {
/// use bullmq_wire::{FlowJob, FlowProducer, JobOptions, ParentOnFailure};
/// use serde_json::json;
/// let thumbnail = FlowJob::new("resize", "images", json!({"size": 64}))
///     .opts(JobOptions { on_failure: Some(ParentOnFailure::FailParent), ..Default::default() });
/// let tree = FlowProducer::new(&conn)
///     .add(FlowJob::new("publish", "posts", json!({"post": 7})).child(thumbnail))
///     .await?;
/// println!("parent {} waits for {}", tree.id, tree.children[0].id);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FlowProducer {
    conn: Connection,
}

impl FlowProducer {
    /// A producer on this connection (and its key prefix).
    pub fn new(conn: &Connection) -> Self {
        FlowProducer { conn: conn.clone() }
    }

    /// Adds the flow in one script call: all of it, or (on bad input or a
    /// Redis error) none of it. Jobs without a custom id get UUIDs.
    pub async fn add(&self, flow: FlowJob) -> Result<FlowNode> {
        let mut nodes = Vec::new();
        let tree = flatten(&flow, 0, None, self.conn.prefix(), &mut nodes)?;
        if self.conn.is_cluster() {
            one_slot(self.conn.prefix(), &flow, &nodes)?;
        }
        let root = QueueKeys::new(self.conn.prefix(), &flow.queue_name);
        let mut call = script::ADD_FLOW.call().key(root.meta()).arg(nodes.len());
        for n in &nodes {
            let o = &n.job.opts;
            call.push_arg(&n.base);
            call.push_arg(&n.id);
            call.push_arg(&n.job.name);
            call.push_arg(&n.job.data);
            call.push_arg(o.to_stored_string());
            call.push_arg(n.timestamp);
            call.push_arg(o.delay.map(to_ms).unwrap_or(0));
            call.push_arg(o.priority.unwrap_or(0));
            call.push_arg(if o.lifo { "1" } else { "" });
            call.push_arg(n.parent);
            call.push_arg(
                o.parent
                    .as_ref()
                    .map(|p| p.hash_json(o.on_failure).to_string())
                    .unwrap_or_default(),
            );
        }
        let _ids: Vec<String> = match self.conn.acked_adds() {
            None => call.invoke(&mut self.conn.manager()).await?,
            Some((mut con, acks)) => call.invoke_replicated(&mut con, acks).await?,
        };
        Ok(tree)
    }
}

/// On a cluster, one script writes the whole flow, so every queue in it
/// must hash to the root's slot; checked before anything is written.
fn one_slot(prefix: &str, root: &FlowJob, nodes: &[Node]) -> Result<()> {
    let root_slot = slot::queue_slot(prefix, &root.queue_name)?;
    for node in nodes {
        let queue = &node.job_queue;
        if slot::queue_slot(prefix, queue)? != root_slot {
            return Err(Error::invalid(
                "flow for Redis Cluster",
                format!(
                    "queue {queue:?} is in another cluster slot than the flow's root queue {:?}; \
                     one script writes a whole flow, so give its queues the same hash tag \
                     (for example the prefix \"{{{prefix}}}\")",
                    root.queue_name
                ),
            ));
        }
    }
    Ok(())
}

/// One job of a flow, flattened for the script (parents before children).
struct Node {
    base: String,
    /// The queue's name.
    job_queue: String,
    id: String,
    /// The job, its options naming its flow parent.
    job: NewJob,
    timestamp: i64,
    /// 1-based index of the parent node, 0 for the root.
    parent: usize,
}

/// Checks `job` and appends it and its subtree, depth first; returns the
/// subtree's ids.
fn flatten(
    job: &FlowJob,
    parent: usize,
    parent_ref: Option<ParentRef>,
    prefix: &str,
    out: &mut Vec<Node>,
) -> Result<FlowNode> {
    validate_queue_name(&job.queue_name)?;
    // the flow decides each job's parent (stored as BullMQ stores a
    // child's: `opts.parent`, and `parentKey`/`parent` in the hash)
    let opts = JobOptions {
        parent: parent_ref,
        ..job.opts.clone()
    };
    let new = NewJob::new(job.name.clone(), &job.data, opts);
    new.validate()?;
    let id = match &job.opts.job_id {
        Some(id) => {
            validate_job_id(id)?;
            id.clone()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    if job.opts.on_failure.is_some() && new.opts.parent.is_none() {
        return Err(Error::invalid(
            "flow",
            format!("job {id:?} has a failure policy for a parent but is the flow's root"),
        ));
    }
    // (a generated id is not an option: BullMQ stores `jobId` only when given)
    let keys = QueueKeys::new(prefix, &job.queue_name);
    out.push(Node {
        base: keys.base().to_string(),
        job_queue: job.queue_name.clone(),
        id: id.clone(),
        job: new,
        timestamp: job.opts.timestamp.unwrap_or_else(now_ms),
        parent,
    });
    let me = out.len();
    let children = job
        .children
        .iter()
        .map(|c| {
            let parent = ParentRef {
                id: id.clone(),
                queue: keys.qualified_name(),
            };
            flatten(c, me, Some(parent), prefix, out)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(FlowNode {
        id,
        queue_name: job.queue_name.clone(),
        children,
    })
}
