//! The fault suite: a fleet of real processes (Redis with AOF, two
//! gateways, a Rust `worker` and a Node BullMQ worker) serving calls from
//! clients that re-attach after losing a socket, while one fault hits it.
//! Each test prints its ledger (acknowledged vs delivered, lost,
//! duplicated) and asserts that nothing acknowledged is lost or finished
//! twice and that no process exits. RELIABILITY.md records the numbers.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use interop_tests::fleet::{
    self, client, Binaries, Counters, Fleet, Fsync, Kind, Ledger, Plan, Spec,
};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long any run may take before what is open counts as lost.
const RUN_LIMIT: Duration = Duration::from_secs(150);

fn bins() -> Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    BINS.get_or_init(|| fleet::build_binaries().expect("gateway and worker binaries"))
        .clone()
}

async fn start(fsync: Fsync) -> Fleet {
    let spec = Spec {
        fsync,
        gateways: 2,
        rust_workers: 1,
        node_workers: 1,
        concurrency: 8,
        keep_completed_secs: 3600,
    };
    tokio::task::spawn_blocking(move || Fleet::start(&bins(), &spec))
        .await
        .expect("fleet start task")
        .expect("fleet starts")
}

/// Clients calling `demo.sleep {ms}` in the background.
struct Run {
    counters: Arc<Counters>,
    tasks: Vec<JoinHandle<Ledger>>,
    started: Instant,
}

fn launch(fleet: &Fleet, name: &str, clients: usize, calls: u64, window: usize, ms: u64) -> Run {
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let urls = fleet.urls(&format!("user-{name}")).expect("tokens");
    let tasks = (0..clients)
        .map(|i| {
            let plan = Plan {
                urls: urls.clone(),
                first: i,
                tag: format!("{name}-{i}"),
                calls,
                window,
                sleep_ms: Some(ms),
                deadline: started + RUN_LIMIT,
                stale_after: Duration::from_secs(20),
            };
            tokio::spawn(client::run(plan, counters.clone()))
        })
        .collect();
    Run {
        counters,
        tasks,
        started,
    }
}

impl Run {
    async fn delivered(&self, n: u64) {
        assert!(
            self.counters.wait_delivered(n, RUN_LIMIT).await,
            "{n} results were not delivered in time"
        );
    }

    /// Waits for every client, audits Redis and prints the ledger line.
    async fn finish(self, name: &str, fleet: &Fleet) -> Ledger {
        let mut ledger = Ledger::default();
        for t in self.tasks {
            ledger.merge(t.await.expect("client task"));
        }
        ledger.audit(&fleet.redis.url()).await.expect("audit");
        println!(
            "ledger {name}: {ledger} in {:.1} s (logs {})",
            self.started.elapsed().as_secs_f64(),
            fleet.logs().display()
        );
        ledger
    }
}

fn assert_clean(ledger: &Ledger, fleet: &mut Fleet) {
    assert_eq!(ledger.lost, 0, "acknowledged calls lost: {ledger}");
    assert_eq!(ledger.duplicated, 0, "jobs finished twice: {ledger}");
    assert_eq!(ledger.unacknowledged, 0, "calls never accepted: {ledger}");
    assert_eq!(ledger.failed + ledger.wrong_results, 0, "{ledger}");
    assert_eq!(ledger.delivered, ledger.acknowledged, "{ledger}");
    let exited = fleet.exited();
    assert!(exited.is_empty(), "processes exited: {exited:?}");
}

/// Runs a blocking fleet step (a restart waits for the process to be ready).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn now_delivered(run: &Run) -> u64 {
    run.counters.delivered.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_kill9_mid_job_loses_nothing() {
    let mut fleet = start(Fsync::Always).await;
    let run = launch(&fleet, "wkill", 4, 60, 10, 300);
    run.delivered(40).await;
    // each worker dies holding jobs and a supervisor starts it again; the
    // Rust worker's jobs come back when their 30 s locks expire
    for kind in [Kind::Rust, Kind::Node] {
        let w = fleet
            .workers
            .iter_mut()
            .find(|w| w.kind() == kind)
            .expect("worker of that kind");
        blocking(|| w.restart()).expect("worker restarts");
        let seen = now_delivered(&run);
        run.delivered(seen + 30).await;
    }
    let ledger = run.finish("worker kill -9", &fleet).await;
    assert_clean(&ledger, &mut fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_kill9_clients_reattach_elsewhere() {
    let mut fleet = start(Fsync::Always).await;
    // half the clients on each gateway, each watching 20 one-second jobs
    let run = launch(&fleet, "gkill", 4, 50, 20, 1000);
    run.delivered(20).await;
    fleet.gateways[0].kill9();
    let seen = now_delivered(&run);
    run.delivered(seen + 60).await;
    blocking(|| fleet.gateways[0].restart()).expect("gateway restarts");
    let ledger = run.finish("gateway kill -9", &fleet).await;
    assert!(ledger.reconnects >= 2, "clients re-attached: {ledger}");
    assert_clean(&ledger, &mut fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_kill9_with_aof_always_loses_nothing() {
    let mut fleet = start(Fsync::Always).await;
    let run = launch(&fleet, "raof", 4, 60, 10, 200);
    run.delivered(40).await;
    blocking(|| fleet.redis.restart()).expect("redis restarts");
    let ledger = run
        .finish("redis kill -9, appendfsync always", &fleet)
        .await;
    assert_clean(&ledger, &mut fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_kill9_with_aof_everysec_ends_every_call() {
    let mut fleet = start(Fsync::EverySec).await;
    let run = launch(&fleet, "rsec", 4, 60, 10, 200);
    run.delivered(40).await;
    blocking(|| fleet.redis.restart()).expect("redis restarts");
    let ledger = run
        .finish("redis kill -9, appendfsync everysec", &fleet)
        .await;
    // up to a second of writes may be gone: a call acknowledged in that
    // second can be lost (its job no longer exists, -32003); every call
    // still ends, and no process exits
    assert_eq!(ledger.unacknowledged, 0, "{ledger}");
    assert_eq!(ledger.wrong_results, 0, "{ledger}");
    let exited = fleet.exited();
    assert!(exited.is_empty(), "processes exited: {exited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_30s_gives_retryable_errors_then_results() {
    let mut fleet = start(Fsync::Always).await;
    let run = launch(&fleet, "rdown", 4, 60, 10, 200);
    run.delivered(40).await;
    fleet.redis.kill9();
    let down = Instant::now();
    // new calls while Redis is away are refused with a retryable error
    let probe = launch(&fleet, "rdown-probe", 1, 10, 10, 0);
    assert!(
        probe
            .counters
            .wait_retryable(0, Duration::from_secs(25))
            .await,
        "no retryable error while Redis is down"
    );
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down.elapsed())).await;
    blocking(|| fleet.redis.restart()).expect("redis restarts");
    let ledger = run.finish("redis down 30 s", &fleet).await;
    let probed = probe.finish("redis down 30 s (new calls)", &fleet).await;
    assert_clean(&ledger, &mut fleet);
    assert_clean(&probed, &mut fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_10s_loses_nothing() {
    let mut fleet = start(Fsync::Always).await;
    let run = launch(&fleet, "rstop", 4, 60, 10, 200);
    run.delivered(40).await;
    fleet.redis.freeze().expect("SIGSTOP");
    tokio::time::sleep(Duration::from_secs(10)).await;
    fleet.redis.thaw().expect("SIGCONT");
    let ledger = run.finish("redis frozen 10 s", &fleet).await;
    assert_clean(&ledger, &mut fleet);
}
