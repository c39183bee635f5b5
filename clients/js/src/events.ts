/** What the client tells its listeners. */
export interface ClientEvents {
  /** Connected (or reconnected) to `url`. */
  open: { url: string };
  /** The socket closed; `reconnect` says whether the client will try again. */
  close: { code: number; reason: string; reconnect: boolean };
  /** Waiting `delayMs` before attempt `attempt` (from 1) on `url`. */
  reconnecting: { attempt: number; delayMs: number; url: string };
}

export type Listener<T> = (event: T) => void;

/** A tiny typed event emitter (no dependency, same in every runtime). */
export class Emitter {
  private listeners = new Map<keyof ClientEvents, Set<Listener<never>>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof ClientEvents>(name: K, fn: Listener<ClientEvents[K]>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    const stored = set as Set<Listener<ClientEvents[K]>>;
    stored.add(fn);
    return () => stored.delete(fn);
  }

  protected emit<K extends keyof ClientEvents>(name: K, event: ClientEvents[K]): void {
    const set = this.listeners.get(name) as Set<Listener<ClientEvents[K]>> | undefined;
    for (const fn of set ?? []) {
      try {
        fn(event);
      } catch {
        // a listener's bug must not break the client
      }
    }
  }
}
