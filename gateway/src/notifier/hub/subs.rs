//! The sockets watching one job. Nearly always one (the socket that made
//! the call), kept inline; a map only once a second socket watches the
//! same job. A map per watch cost an allocation and two hashes per call.

use tokio::sync::mpsc;

use super::FastMap;
use crate::notifier::{JobEvent, SessionId};

type Sender = mpsc::Sender<JobEvent>;

#[derive(Debug, Default)]
pub(super) enum Subs {
    #[default]
    None,
    One(SessionId, Sender),
    Many(FastMap<SessionId, Sender>),
}

impl Subs {
    /// Adds a socket's sender; false when the socket was there already
    /// (its sender is replaced).
    pub(super) fn insert(&mut self, session: SessionId, tx: Sender) -> bool {
        match self {
            Subs::None => *self = Subs::One(session, tx),
            Subs::One(s, t) if *s == session => {
                *t = tx;
                return false;
            }
            Subs::One(..) => {
                let Subs::One(s, t) = std::mem::take(self) else {
                    return false;
                };
                let mut map = FastMap::default();
                map.insert(s, t);
                map.insert(session, tx);
                *self = Subs::Many(map);
            }
            Subs::Many(map) => return map.insert(session, tx).is_none(),
        }
        true
    }

    /// Removes a socket; false when it was not there.
    pub(super) fn remove(&mut self, session: SessionId) -> bool {
        match self {
            Subs::One(s, _) if *s == session => {
                *self = Subs::None;
                true
            }
            Subs::Many(map) => {
                let removed = map.remove(&session).is_some();
                if map.is_empty() {
                    *self = Subs::None;
                }
                removed
            }
            _ => false,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Subs::None)
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Subs::None => 0,
            Subs::One(..) => 1,
            Subs::Many(map) => map.len(),
        }
    }

    /// Keeps the senders for which `keep` returns true.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&mut Sender) -> bool) {
        match self {
            Subs::None => {}
            Subs::One(_, tx) => {
                if !keep(tx) {
                    *self = Subs::None;
                }
            }
            Subs::Many(map) => {
                map.retain(|_, tx| keep(tx));
                if map.is_empty() {
                    *self = Subs::None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_socket_inline_then_a_map_and_back_to_empty() {
        let (tx, _rx) = mpsc::channel(1);
        let mut subs = Subs::default();
        assert!(subs.is_empty());
        assert!(subs.insert(1, tx.clone()));
        assert!(!subs.insert(1, tx.clone()));
        assert!(matches!(subs, Subs::One(1, _)));
        assert!(!subs.remove(2));
        assert!(subs.insert(2, tx.clone()));
        assert!(subs.insert(3, tx.clone()));
        assert!(!subs.insert(3, tx.clone()));
        assert_eq!(subs.len(), 3);
        assert!(subs.remove(1));
        assert!(!subs.is_empty());
        let mut seen = 0;
        subs.retain(|_| {
            seen += 1;
            seen == 1
        });
        assert_eq!(subs.len(), 1);
        subs.retain(|_| false);
        assert!(subs.is_empty());
        subs.insert(4, tx);
        assert!(subs.remove(4));
        assert!(subs.is_empty());
        assert!(!subs.remove(4));
    }
}
