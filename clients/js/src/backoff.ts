/** Reconnect delays: exponential backoff with full jitter. */
export interface BackoffOptions {
  /** First delay's ceiling, ms (default 200). */
  initialMs?: number;
  /** Largest ceiling, ms (default 10000). */
  maxMs?: number;
}

/** A random delay in [0, min(max, initial * 2^attempt)), ms. */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}): number {
  const initial = opts.initialMs ?? 200;
  const max = opts.maxMs ?? 10_000;
  const ceiling = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.floor(Math.random() * ceiling);
}
