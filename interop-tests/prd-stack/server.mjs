// The PRD's gateway, written as the PRD describes it (sections 2 and 4), as a
// benchmark peer for our Rust gateway: Fastify + @fastify/websocket on Bun,
// JSON-RPC 2.0 `service.method` -> `queue.add(method, params)` on the BullMQ
// queue `service`, an in-memory Map<jobId, Set<socket>>, and results coming
// back over Redis pub/sub on `job:{jobId}` (published by worker.mjs).
//
//   JWT_SECRET=s REDIS_URL=redis://127.0.0.1:6379 PORT=8080 SERVICES=demo \
//     node_modules/.bin/bun server.mjs
//
// Plain ws:// by default; with TLS_CERT_FILE and TLS_KEY_FILE (PEM) set it
// serves HTTPS/WSS instead (Fastify's `https` option), as the PRD asks.
// Clients connect to ws[s]://HOST:PORT/ws?token=<jwt> (HS256, `exp`
// required). It prints `listening <port>` once ready.

import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import Fastify from "fastify";
import websocket from "@fastify/websocket";
import { Queue } from "bullmq";
import IORedis from "ioredis";

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const secret = process.env.JWT_SECRET;
const port = Number(process.env.PORT ?? 8080);
const host = process.env.HOST ?? "127.0.0.1";
const services = new Set((process.env.SERVICES ?? "demo").split(",").map((s) => s.trim()).filter(Boolean));
const keepSeconds = Number(process.env.KEEP_SECS ?? 3600);
const pingMs = Number(process.env.PING_INTERVAL_MS ?? 30000);
if (!secret) {
  console.error("set JWT_SECRET");
  process.exit(2);
}

// ---- JWT (HS256 only, `exp` required), checked before the upgrade

function b64urlJson(part) {
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}

function verifyJwt(token) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const header = b64urlJson(parts[0]);
    if (header.alg !== "HS256") return null;
    const expected = createHmac("sha256", secret).update(`${parts[0]}.${parts[1]}`).digest();
    const given = Buffer.from(parts[2], "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    const claims = b64urlJson(parts[1]);
    if (typeof claims.exp !== "number" || claims.exp * 1000 <= Date.now()) return null;
    return claims;
  } catch {
    return null;
  }
}

// ---- queues, one per service

const connection = new IORedis(redisUrl, { maxRetriesPerRequest: null });
const queues = new Map();
function queueFor(service) {
  let q = queues.get(service);
  if (!q) {
    q = new Queue(service, { connection });
    queues.set(service, q);
  }
  return q;
}

// ---- jobId -> sockets watching it; each socket knows its request id per job

const watchers = new Map(); // jobId -> Set<socket>

function watch(jobId, socket, id) {
  let set = watchers.get(jobId);
  if (!set) {
    set = new Set();
    watchers.set(jobId, set);
  }
  set.add(socket);
  socket.pending.set(jobId, id);
}

function unwatch(jobId, socket) {
  const set = watchers.get(jobId);
  if (set) {
    set.delete(socket);
    if (set.size === 0) watchers.delete(jobId);
  }
  socket.pending.delete(jobId);
}

// ---- results over Redis pub/sub: `job:{jobId}`

const subscriber = new IORedis(redisUrl, { maxRetriesPerRequest: null });
await subscriber.psubscribe("job:*");
subscriber.on("pmessage", (_pattern, channel, message) => {
  const jobId = channel.slice(4);
  const set = watchers.get(jobId);
  if (!set) return;
  let event;
  try {
    event = JSON.parse(message);
  } catch {
    return;
  }
  for (const socket of [...set]) {
    const id = socket.pending.get(jobId);
    if (event.type === "progress") {
      send(socket, { jsonrpc: "2.0", method: "rpc.progress", params: { id, jobId, progress: event.progress } });
      continue;
    }
    if (event.type === "result") {
      send(socket, { jsonrpc: "2.0", result: event.result, id, jobId });
    } else if (event.type === "error") {
      send(socket, { jsonrpc: "2.0", error: { code: -32010, message: "Job failed", data: { failedReason: event.error } }, id, jobId });
    } else {
      continue;
    }
    unwatch(jobId, socket);
  }
});

function send(socket, message) {
  if (socket.readyState === 1) socket.send(JSON.stringify(message));
}

function rpcError(socket, id, code, message) {
  send(socket, { jsonrpc: "2.0", error: { code, message }, id: id ?? null });
}

// ---- one JSON-RPC request

async function handle(socket, raw) {
  let req;
  try {
    req = JSON.parse(raw);
  } catch {
    return rpcError(socket, null, -32700, "Parse error");
  }
  if (req === null || typeof req !== "object" || Array.isArray(req) || req.jsonrpc !== "2.0" || typeof req.method !== "string") {
    return rpcError(socket, req?.id, -32600, "Invalid Request");
  }
  const dot = req.method.indexOf(".");
  const service = dot > 0 ? req.method.slice(0, dot) : "";
  const method = dot > 0 ? req.method.slice(dot + 1) : "";
  if (!services.has(service) || !method) {
    return rpcError(socket, req.id, -32601, "Method not found");
  }
  const jobId = typeof req.jobId === "string" && req.jobId ? req.jobId : randomUUID();
  // Watch before enqueueing, so a fast worker's result cannot slip past.
  if (req.id !== undefined) watch(jobId, socket, req.id);
  try {
    await queueFor(service).add(method, req.params ?? {}, {
      jobId,
      removeOnComplete: { age: keepSeconds },
      removeOnFail: { age: keepSeconds },
    });
  } catch (e) {
    unwatch(jobId, socket);
    return rpcError(socket, req.id, -32004, `Redis unavailable: ${e.message}`);
  }
  if (req.ack === true && req.id !== undefined) {
    send(socket, { jsonrpc: "2.0", method: "rpc.accepted", params: { id: req.id, jobId } });
  }
}

// ---- the server

const tlsCert = process.env.TLS_CERT_FILE;
const tlsKey = process.env.TLS_KEY_FILE;
if (Boolean(tlsCert) !== Boolean(tlsKey)) {
  console.error("set both TLS_CERT_FILE and TLS_KEY_FILE, or neither");
  process.exit(2);
}
const https = tlsCert ? { cert: readFileSync(tlsCert), key: readFileSync(tlsKey) } : null;
const app = Fastify({ logger: false, ...(https ? { https } : {}) });
await app.register(websocket, { options: { maxPayload: 65536 } });

app.get(
  "/ws",
  {
    websocket: true,
    preValidation: async (request, reply) => {
      const claims = verifyJwt(request.query?.token);
      if (!claims) {
        return reply.code(401).send({ error: "unauthorized" });
      }
      request.claims = claims;
    },
  },
  (socket, _request) => {
    socket.pending = new Map(); // jobId -> request id
    socket.alive = true;
    socket.on("pong", () => {
      socket.alive = true;
    });
    socket.on("message", (data, isBinary) => {
      if (isBinary) return rpcError(socket, null, -32600, "Invalid Request");
      handle(socket, data.toString());
    });
    socket.on("close", () => {
      for (const jobId of [...socket.pending.keys()]) unwatch(jobId, socket);
    });
  },
);

// Manual heartbeats (PRD 4.1): ping every interval, drop sockets that did not pong.
setInterval(() => {
  for (const socket of app.websocketServer.clients) {
    if (!socket.alive) {
      socket.terminate();
      continue;
    }
    socket.alive = false;
    socket.ping();
  }
}, pingMs).unref();

await app.listen({ port, host });
console.log(`listening ${app.server.address().port}`);

async function shutdown() {
  await app.close();
  await Promise.all([...queues.values()].map((q) => q.close()));
  subscriber.disconnect();
  connection.disconnect();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
