//! Open connections per user (`sub`), against `max_connections_per_user`:
//! one token must not be able to hold thousands of sockets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Counts each user's open connections.
#[derive(Debug)]
pub struct UserConnections {
    max: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One user's connection; frees its place when dropped.
#[derive(Debug)]
pub struct UserSlot {
    users: Arc<UserConnections>,
    sub: String,
}

impl UserConnections {
    /// Room for `max` connections per user.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(UserConnections {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The most connections one user may hold.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A place for `sub`, or `None` when the user holds the maximum.
    pub fn try_acquire(self: &Arc<Self>, sub: &str) -> Option<UserSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(sub.to_string()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(UserSlot {
            users: self.clone(),
            sub: sub.to_string(),
        })
    }

    /// Connections `sub` holds now.
    pub fn open(&self, sub: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(sub).copied().unwrap_or(0)
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut open = self.users.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.sub) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.sub);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_gets_max_and_places_come_back() {
        let users = UserConnections::new(2);
        let a1 = users.try_acquire("alice");
        let a2 = users.try_acquire("alice");
        assert!(a1.is_some() && a2.is_some());
        assert!(users.try_acquire("alice").is_none());
        assert!(users.try_acquire("bob").is_some(), "per user");
        drop(a1);
        assert_eq!(users.open("alice"), 1);
        assert!(users.try_acquire("alice").is_some());
        drop(a2);
    }

    #[test]
    fn a_user_without_connections_is_forgotten() {
        let users = UserConnections::new(1);
        drop(users.try_acquire("carol"));
        assert!(users.open.lock().unwrap().is_empty());
    }
}
