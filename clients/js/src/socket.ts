/** The part of the WebSocket API this client uses; browsers, Bun, Node 22+ and `ws` all have it. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: drop the TCP connection at once. */
  terminate?: () => void;
}

export type SocketFactory = new (url: string, protocols: string[]) => SocketLike;

const OPEN = 1;

export function isOpen(s: SocketLike): boolean {
  return s.readyState === OPEN;
}

/** The runtime's WebSocket, or `ws` where there is none (Node 20). */
export async function defaultSocketFactory(): Promise<SocketFactory> {
  const native = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (typeof native === "function") return native as SocketFactory;
  const mod = (await import("ws")) as unknown as { WebSocket: SocketFactory };
  return mod.WebSocket;
}

/** A frame's text, whether the runtime hands over a string or bytes. */
export function frameText(data: unknown): string {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    return new TextDecoder().decode(data as ArrayBuffer);
  }
  return String(data);
}

/** The subprotocols that carry the token: `bearer.<jwt>` next to `jsonrpc.v1`. */
export function socketProtocols(token: string): string[] {
  return [`bearer.${token}`, "jsonrpc.v1"];
}
