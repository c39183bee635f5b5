import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { ErrorCode, RpcError } from "./errors.js";
import { Emitter } from "./events.js";
import {
  defaultSocketFactory,
  frameText,
  isOpen,
  socketProtocols,
  type SocketFactory,
  type SocketLike,
} from "./socket.js";
import { refreshDelay, resolveToken, tokenExpiry, type TokenSource } from "./token.js";

export interface ClientOptions {
  /** The JWT, or a function returning a fresh one (called on every connect and before expiry). */
  token: TokenSource;
  /** Reconnect delays (exponential backoff with full jitter). */
  backoff?: BackoffOptions;
  /** Most calls waiting to be sent (while disconnected or over `maxInFlight`); more reject with -32090. Default 10000. */
  queueLimit?: number;
  /** Most calls sent and not answered on one socket (the gateway's default limit is 256). */
  maxInFlight?: number;
  /** Probe the socket after this long without a frame, ms (default 15000). */
  heartbeatIntervalMs?: number;
  /** Drop the socket when the probe is not answered within this long, ms (default 10000). */
  heartbeatTimeoutMs?: number;
  /** Resends of a call the gateway did not accept (rate limited, Redis down, too many in flight). Default 8. */
  maxRetries?: number;
  /** The WebSocket constructor; default: the runtime's, or `ws` in Node 20. */
  WebSocket?: SocketFactory;
}

export interface CallOptions {
  /** Idempotency key (1-128 of A-Z a-z 0-9 - _ . ~); generated when absent. */
  jobId?: string;
  /** Job options: priority, delay, attempts, backoff, timeout. */
  options?: Record<string, unknown>;
  /** Told the gateway's job id as soon as the job is enqueued. */
  onAccepted?: (jobId: string) => void;
  /** Told each progress value the worker reports. */
  onProgress?: (progress: unknown, jobId: string) => void;
  /** Aborting rejects the call with -32092 and cancels the job if it has not started. */
  signal?: AbortSignal;
}

export interface BatchCall extends Omit<CallOptions, "signal"> {
  method: string;
  params?: unknown;
}

export type BatchResult = { ok: true; result: unknown } | { ok: false; error: RpcError };

/** One request waiting for its answer; resent as it is after a reconnect. */
interface Pending {
  id: string;
  frame: Record<string, unknown>;
  resolve: (v: unknown) => void;
  reject: (e: RpcError) => void;
  onAccepted?: (jobId: string) => void;
  onProgress?: (progress: unknown, jobId: string) => void;
  jobId?: string;
  sent: boolean;
  retries: number;
}

/** Close codes after which reconnecting without a change cannot help. */
const FINAL_CLOSES = new Set([1000, 1007, 1009, 4401]);

function randomKey(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  let s = "";
  for (let i = 0; i < 32; i++) s += Math.floor(Math.random() * 16).toString(16);
  return s;
}

function unref(timer: unknown): void {
  (timer as { unref?: () => void }).unref?.();
}

/**
 * A connection to one of several gateways that survives drops: every call is
 * re-attached by its job id after a reconnect and settles exactly once.
 */
export class Client extends Emitter {
  private readonly urls: string[];
  private readonly opts: ClientOptions;
  private readonly pending = new Map<string, Pending>();
  private queue: string[] = [];
  private inFlight = 0;
  private nextId = 1;
  private socket: SocketLike | undefined;
  private urlIndex = 0;
  private attempt = 0;
  /** Set by a 4429/4400 close until a socket opens: the gateway refuses this user (HTTP 429) for a while. */
  private cooling = false;
  /**
   * After reopening from a cool-down: one request at a time, the next once the
   * gateway answered the last (accepted, result or error), until the backlog
   * is sent, so that re-sending it does not flood the rate limit again.
   */
  private paced = false;
  private pacedWaiting: string | undefined;
  /** A rate-limited answer stops all sending until then (ms since the epoch). */
  private pausedUntil = 0;
  private pauseTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private lastRx = 0;
  private probeAt = 0;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private cancelOnAccept = new Set<string>();

  constructor(url: string | string[], opts: ClientOptions) {
    super();
    this.urls = Array.isArray(url) ? [...url] : [url];
    if (this.urls.length === 0) throw new TypeError("at least one URL is needed");
    this.opts = opts;
    void this.connect();
  }

  /** Calls `method` ("service.method") and resolves with the job's result. */
  call(method: string, params?: unknown, opts: CallOptions = {}): Promise<unknown> {
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(new RpcError(ErrorCode.Aborted, "aborted"));
    const frame = this.jobFrame(method, params, opts);
    const promise = this.request(frame, opts);
    if (signal) {
      const id = frame.id as string;
      const onAbort = () => this.abort(id);
      signal.addEventListener("abort", onAbort, { once: true });
      promise.then(
        () => signal.removeEventListener("abort", onAbort),
        () => signal.removeEventListener("abort", onAbort),
      );
    }
    return promise;
  }

  /** Sends several calls in one frame; resolves once all have ended, in order. */
  async batch(calls: BatchCall[]): Promise<BatchResult[]> {
    const frames = calls.map((c) => this.jobFrame(c.method, c.params, c));
    const promises = frames.map((frame, i) => this.request(frame, calls[i] ?? {}, true));
    const room = this.queueRoom();
    const socket = this.socket;
    const direct = !this.paced && Date.now() >= this.pausedUntil;
    if (socket && isOpen(socket) && direct && room >= frames.length && this.queue.length === 0) {
      for (const f of frames) this.markSent(f.id as string);
      socket.send(JSON.stringify(frames));
    } else {
      for (const f of frames) this.enqueue(f.id as string);
      this.pump();
    }
    const settled = await Promise.allSettled(promises);
    return settled.map((s) =>
      s.status === "fulfilled"
        ? { ok: true as const, result: s.value }
        : { ok: false as const, error: s.reason as RpcError },
    );
  }

  /** Waits for the end of a job by its gateway job id (as `onAccepted` told it). */
  subscribe(jobId: string, opts: Pick<CallOptions, "onProgress"> = {}): Promise<unknown> {
    return this.request(this.builtIn("rpc.subscribe", { jobId }), opts);
  }

  /** The job's state, progress, attempts and, once ended, result or error. */
  status(jobId: string): Promise<unknown> {
    return this.request(this.builtIn("rpc.status", { jobId }), {});
  }

  /** Removes a job that has not started; an active job is not interrupted. */
  cancel(jobId: string): Promise<unknown> {
    return this.request(this.builtIn("rpc.cancel", { jobId }), {});
  }

  /** Closes the socket for good; calls still waiting reject with -32091. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.pauseTimer);
    clearInterval(this.heartbeat);
    this.failAll(new RpcError(ErrorCode.Closed, "client closed"));
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      socket.onclose = null;
      socket.close(1000, "client closed");
    }
    this.emit("close", { code: 1000, reason: "client closed", reconnect: false });
  }

  /** How many calls are waiting for their answer. */
  get pendingCount(): number {
    return this.pending.size;
  }

  // ---- requests ----

  private jobFrame(method: string, params: unknown, opts: CallOptions): Record<string, unknown> {
    const frame: Record<string, unknown> = {
      jsonrpc: "2.0",
      id: `c${this.nextId++}`,
      method,
      jobId: opts.jobId ?? randomKey(),
      ack: true, // the gateway's job id comes early, for cancel and re-attach
    };
    if (params !== undefined) frame.params = params;
    if (opts.options !== undefined) frame.options = opts.options;
    return frame;
  }

  private builtIn(method: string, params: unknown): Record<string, unknown> {
    return { jsonrpc: "2.0", id: `c${this.nextId++}`, method, params };
  }

  /** Registers the request; queues it unless `batched` (the caller sends it). */
  private request(
    frame: Record<string, unknown>,
    opts: Pick<CallOptions, "onAccepted" | "onProgress">,
    batched = false,
  ): Promise<unknown> {
    const id = frame.id as string;
    if (this.closed) return Promise.reject(new RpcError(ErrorCode.Closed, "client closed"));
    if (this.queue.length >= (this.opts.queueLimit ?? 10_000)) {
      return Promise.reject(new RpcError(ErrorCode.QueueFull, "too many calls waiting to be sent"));
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        id,
        frame,
        resolve,
        reject,
        onAccepted: opts.onAccepted,
        onProgress: opts.onProgress,
        sent: false,
        retries: 0,
      });
      if (!batched) {
        this.enqueue(id);
        this.pump();
      }
    });
  }

  private enqueue(id: string): void {
    this.queue.push(id);
  }

  private queueRoom(): number {
    return (this.opts.maxInFlight ?? 256) - this.inFlight;
  }

  private markSent(id: string): void {
    const p = this.pending.get(id);
    if (p && !p.sent) {
      p.sent = true;
      this.inFlight++;
    }
  }

  /** Sends queued requests while the socket is open, the window has room and no rate limit pauses it. */
  private pump(): void {
    const socket = this.socket;
    if (!socket || !isOpen(socket)) return;
    const wait = this.pausedUntil - Date.now();
    if (wait > 0) {
      if (this.pauseTimer === undefined) {
        this.pauseTimer = setTimeout(() => {
          this.pauseTimer = undefined;
          this.pump();
        }, wait);
      }
      return;
    }
    while (this.queue.length > 0 && this.queueRoom() > 0) {
      if (this.paced && this.pacedWaiting !== undefined) return;
      const id = this.queue.shift() as string;
      const p = this.pending.get(id);
      if (!p || p.sent) continue;
      this.markSent(id);
      socket.send(JSON.stringify(p.frame));
      // rpc.subscribe is answered only when its job ends: the next need not wait for it
      if (this.paced && p.frame.method !== "rpc.subscribe") this.pacedWaiting = id;
    }
    if (this.paced && this.pacedWaiting === undefined && this.queue.length === 0) this.paced = false;
  }

  /** The gateway answered `id` in some way: in paced mode the next request may go. */
  private answered(id: string): void {
    if (this.pacedWaiting === id) this.pacedWaiting = undefined;
  }

  private settle(id: string): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    if (p.sent) this.inFlight--;
    return p;
  }

  private abort(id: string): void {
    const p = this.settle(id);
    if (!p) return;
    if (p.jobId) this.sendCancel(p.jobId);
    else this.cancelOnAccept.add(id);
    p.reject(new RpcError(ErrorCode.Aborted, "aborted"));
    this.pump();
  }

  private sendCancel(jobId: string): void {
    this.sendInternal("rpc.cancel", { jobId });
  }

  /** A request whose answer nobody waits for (heartbeat probes, cancels, token refreshes). */
  private sendInternal(method: string, params?: unknown): void {
    const socket = this.socket;
    if (!socket || !isOpen(socket)) return;
    const frame: Record<string, unknown> = { jsonrpc: "2.0", id: `x${this.nextId++}`, method };
    if (params !== undefined) frame.params = params;
    socket.send(JSON.stringify(frame));
  }

  private failAll(err: RpcError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    this.queue = [];
    this.inFlight = 0;
    for (const p of all) p.reject(err);
  }

  // ---- frames from the gateway ----

  private onFrame(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    for (const m of Array.isArray(msg) ? msg : [msg]) {
      if (typeof m === "object" && m !== null) this.onMessage(m as Record<string, unknown>);
    }
  }

  private onMessage(m: Record<string, unknown>): void {
    if (typeof m.method === "string") {
      const params = (m.params ?? {}) as { id?: unknown; jobId?: unknown; progress?: unknown };
      if (typeof params.id !== "string") return;
      if (this.pacedWaiting === params.id) {
        this.answered(params.id);
        this.pump();
      }
      const jobId = typeof params.jobId === "string" ? params.jobId : "";
      if (m.method === "rpc.accepted" && this.cancelOnAccept.delete(params.id)) {
        this.sendCancel(jobId);
        return;
      }
      const p = this.pending.get(params.id);
      if (!p) return;
      if (jobId) p.jobId = jobId;
      if (m.method === "rpc.accepted") p.onAccepted?.(jobId);
      else if (m.method === "rpc.progress") p.onProgress?.(params.progress, jobId);
      return;
    }
    if (typeof m.id !== "string") return;
    this.answered(m.id);
    const p = this.pending.get(m.id);
    if (!p) {
      this.pump();
      return;
    }
    if (!("error" in m)) {
      this.settle(m.id);
      p.resolve(m.result);
    } else {
      const err = RpcError.from(m.error);
      if (err.code === ErrorCode.RateLimited) this.pauseFor(err);
      if (err.retryable && p.retries < (this.opts.maxRetries ?? 8)) this.retryLater(p, err);
      else {
        this.settle(m.id);
        p.reject(err);
      }
    }
    this.pump();
  }

  /** A rate-limited answer: nothing more goes out until its `retryAfterMs` has passed. */
  private pauseFor(err: RpcError): void {
    const hint = (err.data as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
    const ms = typeof hint === "number" && hint > 0 ? hint : (this.opts.backoff?.initialMs ?? 200);
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
  }

  /** Sends a call the gateway did not accept again, after its hint or a backoff delay. */
  private retryLater(p: Pending, err: RpcError): void {
    if (p.sent) {
      p.sent = false;
      this.inFlight--;
    }
    p.retries++;
    const hint = (err.data as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
    const delay = Math.max(typeof hint === "number" ? hint : 0, backoffDelay(p.retries, this.opts.backoff));
    setTimeout(() => {
      if (this.pending.get(p.id) === p && !p.sent) {
        this.queue.unshift(p.id);
        this.pump();
      }
    }, delay);
  }

  // ---- the connection ----

  private async connect(): Promise<void> {
    if (this.closed) return;
    const url = this.urls[this.urlIndex % this.urls.length] as string;
    let socket: SocketLike;
    let token: string;
    try {
      token = await resolveToken(this.opts.token);
      const Factory = this.opts.WebSocket ?? (await defaultSocketFactory());
      if (this.closed) return;
      socket = new Factory(url, socketProtocols(token));
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.attempt = 0;
      this.paced = this.cooling;
      this.pacedWaiting = undefined;
      this.cooling = false;
      this.lastRx = Date.now();
      this.probeAt = 0;
      this.startHeartbeat(socket);
      this.scheduleRefresh(token);
      this.emit("open", { url });
      this.reattach();
    };
    socket.onmessage = (ev) => {
      if (this.socket !== socket) return;
      this.lastRx = Date.now();
      this.onFrame(frameText(ev.data));
    };
    socket.onerror = () => {
      // onclose follows and decides
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.dropped(ev.code, ev.reason);
    };
  }

  /** Everything still pending goes out again, in the order it was made. */
  private reattach(): void {
    this.inFlight = 0;
    for (const p of this.pending.values()) p.sent = false;
    this.queue = [...this.pending.keys()];
    this.pump();
  }

  private dropped(code: number, reason: string): void {
    this.socket = undefined;
    clearInterval(this.heartbeat);
    clearTimeout(this.refreshTimer);
    const final =
      FINAL_CLOSES.has(code) && !(code === 4401 && typeof this.opts.token === "function");
    this.emit("close", { code, reason, reconnect: !final && !this.closed });
    if (this.closed) return;
    if (final) {
      this.closed = true;
      this.failAll(new RpcError(ErrorCode.Closed, `gateway closed the connection (${code})`, { code, reason }));
      return;
    }
    this.urlIndex++;
    // after a close for abuse the gateway answers this user's reconnects with
    // HTTP 429 for its abuse_cooldown (a WebSocket cannot read the Retry-After),
    // so every attempt until a socket opens waits the longest delay, jittered
    if (code === 4429 || code === 4400) this.cooling = true;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const attempt = ++this.attempt;
    const maxMs = this.opts.backoff?.maxMs ?? 10_000;
    const delayMs = this.cooling
      ? Math.floor(maxMs / 2 + (Math.random() * maxMs) / 2)
      : backoffDelay(attempt - 1, this.opts.backoff);
    const url = this.urls[this.urlIndex % this.urls.length] as string;
    this.emit("reconnecting", { attempt, delayMs, url });
    this.reconnectTimer = setTimeout(() => void this.connect(), delayMs);
  }

  /** Probes a silent socket; drops it when the probe stays unanswered. */
  private startHeartbeat(socket: SocketLike): void {
    const interval = this.opts.heartbeatIntervalMs ?? 15_000;
    const timeout = this.opts.heartbeatTimeoutMs ?? 10_000;
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      if (this.socket !== socket) return;
      const now = Date.now();
      if (this.probeAt > this.lastRx && now - this.probeAt >= timeout) {
        this.socket = undefined;
        socket.onclose = null;
        socket.onmessage = null;
        if (socket.terminate) socket.terminate();
        else socket.close(4000, "heartbeat timeout");
        this.dropped(4000, "heartbeat timeout");
      } else if (now - this.lastRx >= interval && this.probeAt <= this.lastRx) {
        this.probeAt = now;
        // any answer proves the socket alive; an unknown built-in gets a quick -32601
        this.sendInternal("rpc.ping");
      }
    }, Math.max(50, Math.min(interval, timeout) / 4));
    unref(this.heartbeat);
  }

  /** With a token function, fetches a new token before this one expires and sends `rpc.auth`. */
  private scheduleRefresh(token: string): void {
    clearTimeout(this.refreshTimer);
    if (typeof this.opts.token !== "function") return;
    const exp = tokenExpiry(token);
    if (exp === undefined) return;
    this.refreshTimer = setTimeout(async () => {
      try {
        const fresh = await resolveToken(this.opts.token);
        this.sendInternal("rpc.auth", { token: fresh });
        this.scheduleRefresh(fresh);
      } catch {
        // the connection closes with 4401 at expiry and reconnects with a new token
      }
    }, refreshDelay(exp));
    unref(this.refreshTimer);
  }
}
