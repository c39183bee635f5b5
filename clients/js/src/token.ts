/** A token, or a function that returns a fresh one (called on every connect and before expiry). */
export type TokenSource = string | (() => string | Promise<string>);

export async function resolveToken(source: TokenSource): Promise<string> {
  return typeof source === "function" ? await source() : source;
}

/** The `exp` claim of a JWT in ms since the epoch, or undefined when it cannot be read. */
export function tokenExpiry(token: string): number | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    const claims = JSON.parse(atob(padded)) as { exp?: unknown };
    return typeof claims.exp === "number" ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** When to refresh a token expiring at `expMs`: a fifth of its remaining life early, at most a minute. */
export function refreshDelay(expMs: number, now = Date.now()): number {
  const left = expMs - now;
  return Math.max(1000, left - Math.min(60_000, left / 5));
}
