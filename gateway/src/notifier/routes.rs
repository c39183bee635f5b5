//! Where the end of a fresh call goes, in published mode: the socket that
//! made it. A call whose job id is new reports on this gateway's reply
//! channel, which the hub reads anyway, so nothing has to be subscribed
//! for it; the socket puts its route here itself, and takes it away, under
//! a lock the hub shares, instead of sending the hub a watch and an
//! unwatch per call.
//!
//! The hub takes a route away when it delivers the job's end (or finds its
//! socket gone), and reads every routed job again after its pub/sub
//! connection came back, as messages may have been missed meanwhile.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::{JobEvent, SessionId};
use crate::ids::JobRef;

type Map = HashMap<Arc<str>, Route, foldhash::quality::RandomState>;

/// A fresh call's job and the socket waiting for it.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) session: SessionId,
    pub(crate) tx: mpsc::Sender<JobEvent>,
    /// For the read after a reconnect.
    pub(crate) job: JobRef,
}

/// The routes, by job id.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    map: Mutex<Map>,
    /// Watches in the hub that sockets asked for and did not end yet
    /// (counted when asked, so one on its way to the hub counts too): while
    /// none, a socket that stops waiting for a job has nothing to tell the
    /// hub.
    hub_watches: AtomicUsize,
}

impl Routes {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn insert(&self, id: Arc<str>, route: Route) {
        self.lock().insert(id, route);
    }

    /// Takes away `session`'s route to `id`; false when there was none.
    pub(crate) fn remove(&self, id: &str, session: SessionId) -> bool {
        let mut map = self.lock();
        match map.get(id) {
            Some(route) if route.session == session => map.remove(id).is_some(),
            _ => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Every routed job, for the reads after a reconnect.
    pub(crate) fn jobs(&self) -> Vec<(Arc<str>, JobRef)> {
        self.lock()
            .iter()
            .map(|(id, route)| (id.clone(), route.job.clone()))
            .collect()
    }

    /// A socket asks the hub for a watch.
    pub(crate) fn hub_watch_asked(&self) {
        self.hub_watches.fetch_add(1, Ordering::AcqRel);
    }

    /// The hub ended a socket's watch (or found it was one it had).
    pub(crate) fn hub_watch_ended(&self) {
        let _ = self
            .hub_watches
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Whether the hub may hold a watch a socket asked for.
    pub(crate) fn hub_watches(&self) -> bool {
        self.hub_watches.load(Ordering::Acquire) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_is_taken_away_only_by_its_socket() {
        let routes = Routes::default();
        let (tx, _rx) = mpsc::channel(1);
        let job = JobRef {
            queue: "demo".into(),
            id: "j".into(),
        };
        routes.insert(
            Arc::from("j"),
            Route {
                session: 1,
                tx,
                job,
            },
        );
        assert!(!routes.remove("j", 2));
        assert_eq!(routes.len(), 1);
        assert_eq!(routes.jobs().len(), 1);
        assert!(routes.remove("j", 1));
        assert!(!routes.remove("j", 1));
        assert_eq!(routes.len(), 0);
        assert!(!routes.hub_watches());
        routes.hub_watch_asked();
        assert!(routes.hub_watches());
        routes.hub_watch_ended();
        routes.hub_watch_ended();
        assert!(!routes.hub_watches());
    }
}
