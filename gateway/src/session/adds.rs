//! The jobs this socket is adding right now. A client that sends a call
//! with a `jobId` and, before its answer, `rpc.subscribe` to that job
//! must not hear "not found": a job being added is a job that exists. The
//! subscribe waits for the add to finish before it decides.
//!
//! Only a call with the client's `jobId` marks its add (a random id is
//! known to the client once the job is added), and a subscribe that needs
//! to wait is rare, so a mark is one small allocation: a flag and a
//! `Notify` (a `watch` channel, used before, allocated eight of them).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use super::FastMap;

/// Entries kept before finished adds are swept out.
const SWEEP_AT: usize = 64;

#[derive(Debug, Default)]
struct Flight {
    done: AtomicBool,
    notify: Notify,
}

impl Flight {
    fn is_open(&self) -> bool {
        !self.done.load(Ordering::Acquire)
    }
}

/// Adds in flight by job id; each entry's guard lives in the add's task.
#[derive(Debug, Default)]
pub(crate) struct Adds {
    by_job: FastMap<Arc<str>, Arc<Flight>>,
}

/// Held by the task that adds a job; the add counts as done once it is
/// dropped.
#[derive(Debug)]
pub struct AddInFlight(Arc<Flight>);

impl Drop for AddInFlight {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::Release);
        self.0.notify.notify_waiters();
    }
}

/// An add in flight, to wait for with [`finished`].
#[derive(Debug, Clone)]
pub struct AddWaiter(Arc<Flight>);

impl Adds {
    /// Marks an add of `job_id` as in flight.
    pub(crate) fn begin(&mut self, job_id: &str) -> AddInFlight {
        if self.by_job.len() >= SWEEP_AT {
            self.by_job.retain(|_, f| f.is_open());
        }
        let flight = Arc::new(Flight::default());
        self.by_job.insert(Arc::from(job_id), flight.clone());
        AddInFlight(flight)
    }

    /// The latest add of `job_id`, while it is in flight.
    pub(crate) fn get(&self, job_id: &str) -> Option<AddWaiter> {
        self.by_job
            .get(job_id)
            .filter(|f| f.is_open())
            .map(|f| AddWaiter(f.clone()))
    }
}

/// Resolves once the add `waiter` stands for is done.
pub async fn finished(waiter: AddWaiter) {
    let flight = waiter.0;
    let notified = flight.notify.notified();
    tokio::pin!(notified);
    // registered before the flag is read: a drop in between still wakes us
    notified.as_mut().enable();
    if !flight.is_open() {
        return;
    }
    notified.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_add_is_in_flight_until_its_guard_drops() {
        let mut adds = Adds::default();
        let guard = adds.begin("q.o.k");
        let waiter = adds.get("q.o.k").expect("in flight");
        assert!(adds.get("q.o.other").is_none());
        let waiting = tokio::spawn(finished(waiter.clone()));
        tokio::task::yield_now().await;
        drop(guard);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("done once dropped")
            .unwrap();
        assert!(adds.get("q.o.k").is_none());
        // a wait that starts after the add finished returns at once
        tokio::time::timeout(std::time::Duration::from_secs(5), finished(waiter))
            .await
            .expect("already done");
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
