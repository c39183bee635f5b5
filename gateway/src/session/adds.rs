//! The jobs this socket is adding right now. A client that sends a call
//! with a `jobId` and, before its answer, `rpc.subscribe` to that job
//! must not hear "not found": a job being added is a job that exists. The
//! subscribe waits for the add to finish before it decides.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

/// Entries kept before finished adds are swept out.
const SWEEP_AT: usize = 64;

/// Adds in flight by job id; each entry's sender lives in the add's task.
#[derive(Debug, Default)]
pub(crate) struct Adds {
    by_job: HashMap<Arc<str>, watch::Receiver<()>>,
}

/// Held by the task that adds a job; the add counts as done once it is
/// dropped.
#[derive(Debug)]
pub struct AddInFlight(#[allow(dead_code)] watch::Sender<()>);

fn open(rx: &watch::Receiver<()>) -> bool {
    rx.has_changed().is_ok()
}

impl Adds {
    /// Marks an add of `job_id` as in flight.
    pub(crate) fn begin(&mut self, job_id: &str) -> AddInFlight {
        if self.by_job.len() >= SWEEP_AT {
            self.by_job.retain(|_, rx| open(rx));
        }
        let (tx, rx) = watch::channel(());
        self.by_job.insert(Arc::from(job_id), rx);
        AddInFlight(tx)
    }

    /// The latest add of `job_id`, while it is in flight.
    pub(crate) fn get(&self, job_id: &str) -> Option<watch::Receiver<()>> {
        self.by_job.get(job_id).filter(|rx| open(rx)).cloned()
    }
}

/// Resolves once the add `rx` stands for is done.
pub async fn finished(mut rx: watch::Receiver<()>) {
    while rx.changed().await.is_ok() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_add_is_in_flight_until_its_guard_drops() {
        let mut adds = Adds::default();
        let guard = adds.begin("q.o.k");
        let rx = adds.get("q.o.k").expect("in flight");
        assert!(adds.get("q.o.other").is_none());
        let waiter = tokio::spawn(finished(rx));
        drop(guard);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("done once dropped")
            .unwrap();
        assert!(adds.get("q.o.k").is_none());
    }

    #[test]
    fn finished_adds_are_swept() {
        let mut adds = Adds::default();
        for i in 0..SWEEP_AT {
            drop(adds.begin(&format!("j{i}")));
        }
        let _live = adds.begin("live");
        assert_eq!(adds.by_job.len(), 1);
    }
}
