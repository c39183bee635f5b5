//! A client that never gives up on a call it was acknowledged for: it calls
//! `demo.<method>` with its own `jobId` and `ack: true`, keeps a window of
//! calls in flight, retries calls refused with a retryable error, and when
//! its socket dies reconnects (to the next gateway) and re-attaches: an
//! acknowledged call with `rpc.subscribe`, an unacknowledged one by sending
//! it again with the same `jobId` (the gateway never enqueues it twice).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::ledger::{Counters, Ledger};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What one client does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Gateway URLs with the token (`ws://…/ws?token=…`); the client starts
    /// at `first` and moves to the next one after losing a socket.
    pub urls: Vec<String>,
    /// Index into `urls` of the first gateway.
    pub first: usize,
    /// Unique per client; call keys are `<tag>-<n>`.
    pub tag: String,
    /// How many calls.
    pub calls: u64,
    /// Calls in flight at once.
    pub window: usize,
    /// `sleep` (with `ms`) or `echo`.
    pub sleep_ms: Option<u64>,
    /// When to stop waiting (what is still open then counts as lost).
    pub deadline: Instant,
    /// A socket silent this long while calls are open gets them re-subscribed.
    pub stale_after: Duration,
}

struct Open {
    params: Value,
    job_id: Option<String>,
    retry_at: Option<Instant>,
}

struct Caller {
    plan: Plan,
    counters: Arc<Counters>,
    ledger: Ledger,
    open: HashMap<u64, Open>,
    done: Vec<bool>,
    next: u64,
}

/// Runs `plan` to its end; returns this client's ledger (not yet audited).
pub async fn run(plan: Plan, counters: Arc<Counters>) -> Ledger {
    let done = vec![false; plan.calls as usize];
    let mut caller = Caller {
        plan,
        counters,
        ledger: Ledger::default(),
        open: HashMap::new(),
        done,
        next: 0,
    };
    caller.run().await;
    caller.ledger
}

impl Caller {
    fn finished(&self) -> bool {
        self.next >= self.plan.calls && self.open.is_empty()
    }

    async fn run(&mut self) {
        let mut gw = self.plan.first;
        let mut first = true;
        while !self.finished() && Instant::now() < self.plan.deadline {
            let url = &self.plan.urls[gw % self.plan.urls.len()];
            let connect = tokio_tungstenite::connect_async(url.as_str());
            let ws = match tokio::time::timeout(Duration::from_secs(5), connect).await {
                Ok(Ok((ws, _))) => ws,
                _ => {
                    gw += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if !first {
                self.ledger.reconnects += 1;
            }
            first = false;
            self.session(ws).await;
            gw += 1;
        }
        for (_, call) in self.open.drain() {
            if call.job_id.is_some() {
                self.ledger.lost += 1;
            } else {
                self.ledger.unacknowledged += 1;
            }
        }
        self.ledger.unacknowledged += self.plan.calls - self.next;
    }

    /// One socket: re-attach what is open, then call and read until the
    /// socket dies or everything is answered.
    async fn session(&mut self, mut ws: Socket) {
        let reattach: Vec<(u64, Option<String>)> = self
            .open
            .iter()
            .map(|(n, c)| (*n, c.job_id.clone()))
            .collect();
        for (n, job_id) in reattach {
            let frame = match job_id {
                Some(id) => subscribe_frame(n, &id),
                None => self.call_frame(n),
            };
            if send(&mut ws, frame).await.is_err() {
                return;
            }
        }
        let mut last_frame = Instant::now();
        while !self.finished() && Instant::now() < self.plan.deadline {
            if self.fill(&mut ws).await.is_err() {
                return;
            }
            if last_frame.elapsed() > self.plan.stale_after {
                let acked: Vec<(u64, String)> = self
                    .open
                    .iter()
                    .filter_map(|(n, c)| c.job_id.clone().map(|id| (*n, id)))
                    .collect();
                for (n, id) in acked {
                    self.ledger.stale_resubscribes += 1;
                    if send(&mut ws, subscribe_frame(n, &id)).await.is_err() {
                        return;
                    }
                }
                last_frame = Instant::now();
            }
            match tokio::time::timeout(Duration::from_millis(250), ws.next()).await {
                Err(_) => continue,
                Ok(Some(Ok(Message::Text(t)))) => {
                    last_frame = Instant::now();
                    if let Ok(v) = serde_json::from_str::<Value>(t.as_str()) {
                        self.on_frame(&v);
                    }
                }
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return,
                Ok(Some(Ok(_))) => last_frame = Instant::now(),
            }
        }
    }

    /// Sends new calls up to the window and the retries that are due.
    async fn fill(&mut self, ws: &mut Socket) -> Result<(), ()> {
        let now = Instant::now();
        let due: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, c)| c.retry_at.is_some_and(|t| t <= now))
            .map(|(n, _)| *n)
            .collect();
        for n in due {
            if let Some(c) = self.open.get_mut(&n) {
                c.retry_at = None;
            }
            send(ws, self.call_frame(n)).await?;
        }
        while self.open.len() < self.plan.window && self.next < self.plan.calls {
            let n = self.next;
            self.next += 1;
            let params = match self.plan.sleep_ms {
                Some(ms) => json!({"ms": ms}),
                None => json!({"n": n, "tag": self.plan.tag}),
            };
            self.open.insert(
                n,
                Open {
                    params,
                    job_id: None,
                    retry_at: None,
                },
            );
            send(ws, self.call_frame(n)).await?;
        }
        Ok(())
    }

    fn call_frame(&self, n: u64) -> Value {
        let (method, params) = match (self.plan.sleep_ms, self.open.get(&n)) {
            (Some(_), Some(c)) => ("demo.sleep", c.params.clone()),
            (None, Some(c)) => ("demo.echo", c.params.clone()),
            (_, None) => ("demo.echo", Value::Null),
        };
        json!({"jsonrpc": "2.0", "id": format!("c{n}"), "method": method,
               "params": params, "jobId": format!("{}-{n}", self.plan.tag), "ack": true})
    }

    fn on_frame(&mut self, v: &Value) {
        if v["method"] == "rpc.accepted" {
            if let (Some(n), Some(job)) =
                (call_no(&v["params"]["id"]), v["params"]["jobId"].as_str())
            {
                self.acknowledge(n, job);
            }
            return;
        }
        if v.get("method").is_some() {
            return; // progress
        }
        let Some(n) = call_no(&v["id"]) else { return };
        if let Some(result) = v.get("result") {
            let job = v["jobId"].as_str().unwrap_or_default().to_string();
            self.deliver(n, &job, result);
        } else if let Some(err) = v.get("error") {
            let code = err["code"].as_i64().unwrap_or(0);
            *self.ledger.errors.entry(code).or_default() += 1;
            self.on_error(n, code);
        }
    }

    fn acknowledge(&mut self, n: u64, job: &str) {
        if let Some(c) = self.open.get_mut(&n) {
            if c.job_id.is_none() {
                c.job_id = Some(job.to_string());
                self.ledger.acknowledged += 1;
                self.ledger.job_ids.push(job.to_string());
                self.counters.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn deliver(&mut self, n: u64, job: &str, result: &Value) {
        let Some(c) = self.open.get(&n) else {
            if self.done.get(n as usize) == Some(&true) {
                self.ledger.repeats += 1;
            }
            return;
        };
        if c.job_id.is_none() {
            self.acknowledge(n, job);
        }
        let Some(c) = self.open.remove(&n) else {
            return;
        };
        let expected = match self.plan.sleep_ms {
            Some(ms) => json!({"slept": ms}),
            None => json!({"echo": c.params}),
        };
        if *result != expected {
            self.ledger.wrong_results += 1;
        }
        if let Some(d) = self.done.get_mut(n as usize) {
            *d = true;
        }
        self.ledger.delivered += 1;
        self.counters.delivered.fetch_add(1, Ordering::Relaxed);
    }

    fn on_error(&mut self, n: u64, code: i64) {
        let Some(c) = self.open.get_mut(&n) else {
            return;
        };
        match code {
            // retry later: Redis away, rate limit, in-flight cap, internal
            -32004 | -32001 | -32005 | -32603 => {
                self.counters
                    .retryable_errors
                    .fetch_add(1, Ordering::Relaxed);
                c.retry_at = Some(Instant::now() + Duration::from_millis(500));
            }
            // the job is gone: acknowledged and lost
            -32003 | -32011 => {
                self.open.remove(&n);
                self.ledger.lost += 1;
            }
            -32010 => {
                self.open.remove(&n);
                self.ledger.failed += 1;
            }
            _ => {
                self.open.remove(&n);
                self.ledger.failed += 1;
            }
        }
    }
}

/// The call number of `c<n>`/`s<n>` request ids.
fn call_no(id: &Value) -> Option<u64> {
    let s = id.as_str()?;
    s.get(1..)?.parse().ok()
}

fn subscribe_frame(n: u64, job_id: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": format!("s{n}"), "method": "rpc.subscribe",
           "params": {"jobId": job_id}})
}

async fn send(ws: &mut Socket, frame: Value) -> Result<(), ()> {
    ws.send(Message::text(frame.to_string()))
        .await
        .map_err(|_| ())
}
