//! The idle test: helper processes hold authenticated idle sockets while
//! the gateway's memory is sampled.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::load::{connect, Target, Tls};
use crate::procs::{free_port, start_ours, start_prd, wait_or_kill, OurBinaries, PrdStack};
use crate::{runtime, Peer, PER_HOLDER};

pub(crate) struct IdleResult {
    pub(crate) peer: Peer,
    pub(crate) label: &'static str,
    pub(crate) count: usize,
    /// (connections, VmRSS KiB) after each helper process finished, and at rest.
    pub(crate) steps: Vec<(usize, u64)>,
    pub(crate) base_kb: u64,
    pub(crate) hwm_kb: u64,
    pub(crate) connect_seconds: f64,
}

impl IdleResult {
    pub(crate) fn per_conn_kib(&self) -> f64 {
        let last = self.steps.last().map(|s| s.1).unwrap_or(self.base_kb);
        (last as f64 - self.base_kb as f64) / self.count.max(1) as f64
    }
}

/// A helper process holding idle connections; they close when it ends.
pub(crate) struct Holder {
    pub(crate) child: Child,
    pub(crate) stdin: Option<ChildStdin>,
    pub(crate) _stdout: BufReader<ChildStdout>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.stdin.take());
        wait_or_kill(&mut self.child, Duration::from_secs(10));
    }
}

pub(crate) fn idle_test(
    peer: Peer,
    bins: Option<&OurBinaries>,
    prd: Option<&PrdStack>,
    redis_url: &str,
    count: usize,
    tls: Option<&Tls>,
    logs: &Path,
) -> Result<IdleResult, String> {
    let port = free_port();
    eprintln!("{}: idle: {count} connections", peer.name());
    let max_conn = (count + 1000).to_string();
    let mut procs = match peer {
        Peer::Ours => start_ours(
            bins.ok_or("no binaries")?,
            redis_url,
            port,
            1,
            &["--max-connections", &max_conn],
            false,
            tls,
            logs,
        )?,
        Peer::Prd => start_prd(
            prd.ok_or("no prd stack")?,
            redis_url,
            port,
            1,
            false,
            tls,
            logs,
        )?,
    };
    let front = &mut procs[0];
    let cert = tls.map(|t| t.cert_file.as_path());
    // Warm the accept path with a few connections, closed again.
    hold(port, cert, 0, 100)?;
    std::thread::sleep(Duration::from_secs(1));
    let base_kb = front.memory_kb().1;
    let started = Instant::now();
    let mut holders = Vec::new();
    let mut steps = Vec::new();
    let mut opened = 0;
    while opened < count {
        let n = PER_HOLDER.min(count - opened);
        holders.push(hold(port, cert, opened, n)?);
        opened += n;
        front.check_alive()?;
        steps.push((opened, front.memory_kb().1));
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    front.check_alive()?;
    let (hwm_kb, rss_kb) = front.memory_kb();
    steps.push((opened, rss_kb));
    drop(holders);
    Ok(IdleResult {
        peer,
        label: peer.labels()[0],
        count,
        steps,
        base_kb,
        hwm_kb,
        connect_seconds,
    })
}

/// Starts a helper holding `n` connections (users `idle-<first>`...) and
/// waits until all are open; with `n` = 100 and first = 0 it is dropped at
/// once (warm-up).
pub(crate) fn hold(
    port: u16,
    cert: Option<&Path>,
    first: usize,
    n: usize,
) -> Result<Holder, String> {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--hold-idle",
        &port.to_string(),
        &first.to_string(),
        &n.to_string(),
    ]);
    if let Some(c) = cert {
        cmd.arg(c);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdin = child.stdin.take();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).map_err(|e| e.to_string())?;
    let holder = Holder {
        child,
        stdin,
        _stdout: stdout,
    };
    if line.trim() != format!("ready {n}") {
        return Err(format!("idle helper: {}", line.trim()));
    }
    Ok(holder)
}

/// `--hold-idle PORT FIRST N [CERT]`: opens N authenticated connections
/// (wss:// trusting CERT when given), prints `ready N`, keeps them
/// (answering pings) until stdin closes.
pub(crate) fn hold_idle(args: &[String]) {
    let (port, first, n): (u16, usize, usize) = (
        args[0].parse().unwrap(),
        args[1].parse().unwrap(),
        args[2].parse().unwrap(),
    );
    let target = Target::new(port, args.get(3).map(Path::new));
    let rt = runtime(1);
    let result: Result<(), String> = rt.block_on(async {
        // Small buffers: the helper's memory is not what is measured.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let mut opened = futures::stream::iter(first..first + n)
            .map(|i| {
                let target = target.clone();
                async move { connect(&target, &format!("idle-{i}"), config).await }
            })
            .buffer_unordered(64);
        let mut count = 0;
        while let Some(ws) = opened.next().await {
            let mut ws = ws.map_err(|e| format!("after {count} connections: {e}"))?;
            count += 1;
            tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
        }
        println!("ready {count}");
        std::io::stdout().flush().unwrap();
        // Wait for the parent to close stdin.
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .unwrap();
        Ok(())
    });
    if let Err(e) = result {
        println!("error {e}");
    }
}
