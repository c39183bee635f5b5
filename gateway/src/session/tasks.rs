//! A socket's running handler tasks, polled by the session loop.

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;

use super::TaskDone;

/// The set is made at the first task and dropped when it empties again:
/// `FuturesUnordered::new()` allocates its ready queue and a stub task
/// (~150 bytes), which an idle socket need not hold.
#[derive(Default)]
pub(super) struct Tasks(Option<FuturesUnordered<BoxFuture<'static, TaskDone>>>);

impl Tasks {
    pub(super) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, FuturesUnordered::len)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn push(&mut self, task: BoxFuture<'static, TaskDone>) {
        self.0.get_or_insert_with(FuturesUnordered::new).push(task);
    }

    /// The next task to finish; `None` when there is none.
    pub(super) async fn next(&mut self) -> Option<TaskDone> {
        let set = self.0.as_mut()?;
        let done = set.next().await;
        if set.is_empty() {
            self.0 = None;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fired(label: &str) -> BoxFuture<'static, TaskDone> {
        let label = label.to_string();
        Box::pin(async move {
            TaskDone::Fired {
                label,
                result: Ok(None),
            }
        })
    }

    #[tokio::test]
    async fn the_set_exists_only_while_tasks_run() {
        let mut tasks = Tasks::default();
        assert!(tasks.0.is_none() && tasks.is_empty());
        assert!(tasks.next().await.is_none());
        tasks.push(fired("a"));
        tasks.push(fired("b"));
        assert_eq!(tasks.len(), 2);
        let mut labels = Vec::new();
        while let Some(TaskDone::Fired { label, .. }) = tasks.next().await {
            labels.push(label);
        }
        labels.sort();
        assert_eq!(labels, ["a", "b"]);
        assert!(tasks.0.is_none(), "an emptied set is dropped");
    }
}
