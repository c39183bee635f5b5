export { Client } from "./client.js";
export type { BatchCall, BatchResult, CallOptions, ClientOptions } from "./client.js";
export { ErrorCode, RpcError } from "./errors.js";
export type { BackoffOptions } from "./backoff.js";
export type { ClientEvents } from "./events.js";
export type { TokenSource } from "./token.js";
export type { SocketFactory, SocketLike } from "./socket.js";
