//! What a [`Runtime`](crate::Runtime) tells about itself while it runs in
//! another program's process (the gateway's `--dev` mode shows it on
//! `/healthz`): whether its workers' loops run, and the last time one of
//! them could not reach Redis.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bullmq_wire::{Worker, WorkerEvent};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

/// Where a runtime is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Every service's worker loop runs.
    Running,
    /// A graceful stop was asked for; running jobs are finishing.
    Stopping,
    /// Stopped, or a worker loop ended without being asked to.
    Stopped,
}

/// The last error a worker reported (it could not reach Redis; it keeps
/// results and retries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastError {
    /// The service whose worker reported it.
    pub service: String,
    /// What went wrong.
    pub message: String,
    /// When, milliseconds since the epoch.
    pub at_ms: u64,
}

/// A runtime's state at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// Running, stopping or stopped.
    pub state: RunState,
    /// The services served.
    pub services: Vec<String>,
    /// Services whose worker loop ended without a stop being asked for.
    pub ended: Vec<String>,
    /// The last error any worker reported, if one did.
    pub last_error: Option<LastError>,
}

const RUNNING: u8 = 0;
const STOPPING: u8 = 1;
const STOPPED: u8 = 2;

/// What the runtime and its [`Health`] handles share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The workers, one per service; emptied by `close`.
    workers: Mutex<Vec<(String, Worker)>>,
    services: Vec<String>,
    phase: AtomicU8,
    last_error: Mutex<Option<LastError>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Shared {
    pub(crate) fn new(workers: Vec<(String, Worker)>) -> Arc<Self> {
        Arc::new(Shared {
            services: workers.iter().map(|(s, _)| s.clone()).collect(),
            workers: Mutex::new(workers),
            phase: AtomicU8::new(RUNNING),
            last_error: Mutex::new(None),
        })
    }

    pub(crate) fn services(&self) -> &[String] {
        &self.services
    }

    /// Takes the workers out to close them; the state is `stopping` until
    /// [`Shared::stopped`].
    pub(crate) fn take_for_close(&self) -> Vec<(String, Worker)> {
        self.phase.store(STOPPING, Ordering::Release);
        std::mem::take(&mut *lock(&self.workers))
    }

    pub(crate) fn stopped(&self) {
        self.phase.store(STOPPED, Ordering::Release);
    }

    fn record(&self, service: &str, message: String) {
        *lock(&self.last_error) = Some(LastError {
            service: service.to_string(),
            message,
            at_ms: now_ms(),
        });
    }
}

/// A handle on a runtime's state; cheap to clone, usable from any thread,
/// and still valid (reporting `stopped`) after the runtime is closed.
#[derive(Debug, Clone)]
pub struct Health {
    shared: Arc<Shared>,
}

impl Health {
    /// Starts listening to each worker's errors (one task per worker,
    /// ending with it).
    pub(crate) fn watch(shared: Arc<Shared>) -> Self {
        for (service, worker) in lock(&shared.workers).iter() {
            let mut events = worker.events();
            let weak = Arc::downgrade(&shared);
            let service = service.clone();
            tokio::spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(WorkerEvent::Error { error }) => match weak.upgrade() {
                            Some(shared) => shared.record(&service, error),
                            None => return,
                        },
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return,
                    }
                }
            });
        }
        Health { shared }
    }

    /// The state now.
    pub fn report(&self) -> HealthReport {
        let phase = self.shared.phase.load(Ordering::Acquire);
        let ended: Vec<String> = lock(&self.shared.workers)
            .iter()
            .filter(|(_, w)| !w.is_running())
            .map(|(s, _)| s.clone())
            .collect();
        let state = match phase {
            RUNNING if ended.is_empty() => RunState::Running,
            RUNNING => RunState::Stopped,
            STOPPING => RunState::Stopping,
            _ => RunState::Stopped,
        };
        HealthReport {
            state,
            services: self.shared.services.clone(),
            ended,
            last_error: lock(&self.shared.last_error).clone(),
        }
    }
}
