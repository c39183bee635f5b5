//! Opens N idle authenticated WebSocket connections to a running gateway
//! and reports the gateway's resident memory per connection.
//!
//! Run with:
//! `cargo run --release -p gateway --example idle_connections -- <ws-url-with-token> <gateway-pid> [N]`
//! (start the gateway with `--plain-ws`; raise `ulimit -n` above N first).

use std::time::Duration;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, pid) = match (args.get(1), args.get(2).and_then(|p| p.parse::<u32>().ok())) {
        (Some(u), Some(p)) => (u.clone(), p),
        _ => {
            eprintln!("usage: idle_connections <ws-url-with-token> <gateway-pid> [N]");
            std::process::exit(2);
        }
    };
    let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5000);
    let before = rss_kib(pid);
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((ws, _)) => sockets.push(ws),
            Err(e) => {
                eprintln!("connection {i} failed: {e}");
                break;
            }
        }
    }
    // Let the sessions settle (first pings are not due yet).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    let open = sockets.len().max(1);
    println!(
        "{} idle connections: gateway RSS {} KiB -> {} KiB, {:.1} KiB per connection",
        sockets.len(),
        before,
        after,
        (after.saturating_sub(before)) as f64 / open as f64
    );
}
