//! Open connections per user (`sub`), against `max_connections_per_user`:
//! one token must not be able to hold thousands of sockets. A user whose
//! socket was closed for abuse (garbage frames, flooding while limited) is
//! refused new ones for `abuse_cooldown`, so reconnecting does not restart
//! the attack at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counts each user's open connections and who is cooling down.
#[derive(Debug)]
pub struct UserConnections {
    max: usize,
    cooldown: Duration,
    open: Mutex<HashMap<String, usize>>,
    cooling: Mutex<HashMap<String, Instant>>,
}

/// Why a user gets no new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The user holds `max_connections_per_user`.
    Full,
    /// A socket of the user was closed for abuse; try again after this.
    CoolingDown(Duration),
}

/// Past this many users cooling down, expired entries are swept on insert.
const SWEEP_AT: usize = 1024;

/// One user's connection; frees its place when dropped.
#[derive(Debug)]
pub struct UserSlot {
    users: Arc<UserConnections>,
    sub: String,
}

impl UserConnections {
    /// Room for `max` connections per user; abusers wait `cooldown`
    /// (zero: never).
    pub fn new(max: usize, cooldown: Duration) -> Arc<Self> {
        Arc::new(UserConnections {
            max,
            cooldown,
            open: Mutex::new(HashMap::new()),
            cooling: Mutex::new(HashMap::new()),
        })
    }

    /// Refuses `sub` new connections for the cool-down (its socket was
    /// closed for abuse).
    pub fn cool_down(&self, sub: &str) {
        if self.cooldown.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut cooling = self.cooling.lock().unwrap_or_else(|p| p.into_inner());
        if cooling.len() >= SWEEP_AT {
            cooling.retain(|_, until| *until > now);
        }
        cooling.insert(sub.to_string(), now + self.cooldown);
    }

    /// How long `sub` still cools down, if it does.
    fn cooling_for(&self, sub: &str) -> Option<Duration> {
        let mut cooling = self.cooling.lock().unwrap_or_else(|p| p.into_inner());
        let until = *cooling.get(sub)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            cooling.remove(sub);
            return None;
        }
        Some(left)
    }

    /// The most connections one user may hold.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A place for `sub`, or why not.
    pub fn try_acquire(self: &Arc<Self>, sub: &str) -> Result<UserSlot, Refused> {
        if let Some(left) = self.cooling_for(sub) {
            return Err(Refused::CoolingDown(left));
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(sub.to_string()).or_insert(0);
        if *n >= self.max {
            return Err(Refused::Full);
        }
        *n += 1;
        Ok(UserSlot {
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
        let users = UserConnections::new(2, Duration::ZERO);
        let a1 = users.try_acquire("alice");
        let a2 = users.try_acquire("alice");
        assert!(a1.is_ok() && a2.is_ok());
        assert_eq!(users.try_acquire("alice").err(), Some(Refused::Full));
        assert!(users.try_acquire("bob").is_ok(), "per user");
        drop(a1);
        assert_eq!(users.open("alice"), 1);
        assert!(users.try_acquire("alice").is_ok());
        drop(a2);
    }

    #[test]
    fn a_user_without_connections_is_forgotten() {
        let users = UserConnections::new(1, Duration::ZERO);
        drop(users.try_acquire("carol"));
        assert!(users.open.lock().unwrap().is_empty());
    }

    #[test]
    fn an_abuser_waits_out_the_cool_down_and_others_do_not() {
        let users = UserConnections::new(5, Duration::from_millis(200));
        users.cool_down("mallory");
        match users.try_acquire("mallory") {
            Err(Refused::CoolingDown(left)) => assert!(left <= Duration::from_millis(200)),
            other => panic!("expected a cool-down, got {other:?}"),
        }
        assert!(users.try_acquire("alice").is_ok());
        std::thread::sleep(Duration::from_millis(250));
        assert!(users.try_acquire("mallory").is_ok(), "the cool-down ends");
        assert!(users.cooling.lock().unwrap().is_empty(), "and is forgotten");
    }

    #[test]
    fn no_cool_down_when_it_is_zero() {
        let users = UserConnections::new(5, Duration::ZERO);
        users.cool_down("mallory");
        assert!(users.try_acquire("mallory").is_ok());
    }
}
