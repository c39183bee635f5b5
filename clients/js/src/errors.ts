/** JSON-RPC error codes of the gateway (docs/protocol.md) and of this client. */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  Internal: -32603,
  Unauthorized: -32000,
  RateLimited: -32001,
  MessageTooLarge: -32002,
  JobNotFound: -32003,
  RedisUnavailable: -32004,
  TooManyInFlight: -32005,
  JobFailed: -32010,
  JobRemoved: -32011,
  Unsubscribed: -32012,
  /** Client side: the queue of calls waiting for a connection is full. */
  QueueFull: -32090,
  /** Client side: the client was closed, or the gateway closed for good. */
  Closed: -32091,
  /** Client side: the call's AbortSignal fired. */
  Aborted: -32092,
} as const;

/** Codes whose call was not accepted and may be sent again as it is. */
const RETRYABLE = new Set<number>([
  ErrorCode.RateLimited,
  ErrorCode.RedisUnavailable,
  ErrorCode.TooManyInFlight,
]);

/** A call that ended in a JSON-RPC error, from the gateway or from this client. */
export class RpcError extends Error {
  readonly code: number;
  readonly data: unknown;
  /** True when sending the same call again may succeed. */
  readonly retryable: boolean;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
    const flagged =
      typeof data === "object" && data !== null && (data as { retryable?: unknown }).retryable === true;
    this.retryable = flagged || RETRYABLE.has(code);
  }

  /** Builds the error from a response's `error` member, whatever its shape. */
  static from(error: unknown): RpcError {
    if (typeof error === "object" && error !== null) {
      const e = error as { code?: unknown; message?: unknown; data?: unknown };
      const code = typeof e.code === "number" ? e.code : ErrorCode.Internal;
      const message = typeof e.message === "string" ? e.message : "error";
      return new RpcError(code, message, e.data);
    }
    return new RpcError(ErrorCode.Internal, String(error));
  }
}
