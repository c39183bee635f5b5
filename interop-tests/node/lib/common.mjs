// Shared helpers for the Node driver: config, connection options, JSON output,
// shutdown handling and job normalisation.
import IORedis, { Cluster } from 'ioredis';

/** Parse the JSON config argument and apply defaults. */
export function parseConfig(raw) {
  const cfg = raw && raw.trim() !== '' ? JSON.parse(raw) : {};
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) {
    throw new Error('config must be a JSON object');
  }
  if (!cfg.redisUrl) throw new Error('config.redisUrl is required');
  if (!cfg.queue) throw new Error('config.queue is required');
  cfg.prefix = cfg.prefix ?? 'bull';
  return cfg;
}

/**
 * Read one of the URLs bullmq-wire takes (`src/connection/target.rs`):
 *   redis[s]://[user:pass@]host:port[/db]               one server
 *   redis[s]+cluster://[user:pass@]host:port[,host:port] a cluster's seed nodes
 *   redis[s]+sentinel://[user:pass@]host:port[,host:port]/master[/db]
 *       [?sentinel_username=..&sentinel_password=..]     a master behind sentinels
 * Returns `{kind: 'server', options}`, `{kind: 'cluster', nodes, redisOptions}`
 * or `{kind: 'sentinel', options}`, in ioredis' terms.
 */
export function parseRedisUrl(redisUrl) {
  const cut = redisUrl.indexOf('://');
  if (cut < 0) throw new Error('redisUrl has no scheme');
  const scheme = redisUrl.slice(0, cut).toLowerCase();
  if (scheme === 'redis' || scheme === 'rediss') {
    return { kind: 'server', options: serverOptions(redisUrl) };
  }
  const kind = { 'redis+cluster': 'cluster', 'rediss+cluster': 'cluster',
    'redis+sentinel': 'sentinel', 'rediss+sentinel': 'sentinel' }[scheme];
  if (!kind) throw new Error(`unsupported redisUrl scheme: ${scheme}`);
  const tls = scheme.startsWith('rediss');
  let rest = redisUrl.slice(cut + 3);
  let query = '';
  const q = rest.indexOf('?');
  if (q >= 0) [rest, query] = [rest.slice(0, q), rest.slice(q + 1)];
  const slash = rest.indexOf('/');
  const [authority, path] = slash >= 0 ? [rest.slice(0, slash), rest.slice(slash)] : [rest, ''];
  const at = authority.lastIndexOf('@');
  const credentials = {};
  if (at >= 0) {
    const info = authority.slice(0, at);
    const colon = info.indexOf(':');
    const user = colon >= 0 ? info.slice(0, colon) : info;
    if (user) credentials.username = decodeURIComponent(user);
    if (colon >= 0) credentials.password = decodeURIComponent(info.slice(colon + 1));
  }
  const defaultPort = kind === 'cluster' ? 6379 : 26379;
  const nodes = authority.slice(at + 1).split(',').filter((h) => h !== '')
    .map((h) => hostPort(h, defaultPort));
  if (nodes.length === 0) throw new Error('redisUrl names no host:port');
  const params = new URLSearchParams(query);
  if (tls) credentials.tls = {};
  if (kind === 'cluster') {
    if (path.replace(/\//g, '') !== '') throw new Error('a cluster URL has no path');
    return { kind, nodes, redisOptions: credentials };
  }
  const [name, db] = path.split('/').filter((s) => s !== '');
  if (!name) throw new Error('a sentinel URL names the master after the hosts');
  const options = { sentinels: nodes, name: decodeURIComponent(name), ...credentials };
  if (db !== undefined) options.db = Number(db);
  if (params.has('sentinel_username')) options.sentinelUsername = params.get('sentinel_username');
  if (params.has('sentinel_password')) options.sentinelPassword = params.get('sentinel_password');
  if (tls) options.enableTLSForSentinelMode = true;
  return { kind, options };
}

// `host:port`, `[v6]:port` or a bare host.
function hostPort(text, defaultPort) {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new Error(`bad host:port ${JSON.stringify(text)}`);
  return { host: m[1], port: m[2] ? Number(m[2]) : defaultPort };
}

/** Turn `redis[s]://[user:pass@]host:port[/db]` into ioredis connection options. */
function serverOptions(redisUrl) {
  const url = new URL(redisUrl);
  const opts = {
    host: url.hostname || '127.0.0.1',
    port: url.port ? Number(url.port) : 6379,
  };
  const db = url.pathname.replace(/^\//, '');
  if (db !== '') opts.db = Number(db);
  if (url.username) opts.username = decodeURIComponent(url.username);
  if (url.password) opts.password = decodeURIComponent(url.password);
  if (url.protocol === 'rediss:') opts.tls = { servername: url.hostname };
  return opts;
}

/**
 * ioredis options for a one-server or Sentinel URL (what `new IORedis(opts)`
 * takes). A cluster URL has no such options: use `makeConnection`/`makeClient`.
 */
export function connectionFromUrl(redisUrl) {
  const parsed = parseRedisUrl(redisUrl);
  if (parsed.kind === 'cluster') {
    throw new Error('a redis+cluster:// URL needs an ioredis Cluster: use makeClient');
  }
  return parsed.options;
}

/**
 * The `connection` for a BullMQ Queue/Worker/QueueEvents/FlowProducer: an
 * options object for one server or a Sentinel set (BullMQ makes and closes
 * its own clients, and sets `maxRetriesPerRequest: null` on blocking ones),
 * or a new ioredis Cluster of the seed nodes for a cluster (BullMQ takes an
 * instance; it duplicates it for its blocking connection and checks that
 * `redisOptions.maxRetriesPerRequest` is null when `blocking` is set).
 * The caller closes a Cluster instance: BullMQ leaves instances it was given
 * open; these drivers exit the process, which drops it.
 */
export function makeConnection(cfg, { blocking = true } = {}) {
  const parsed = parseRedisUrl(cfg.redisUrl);
  if (parsed.kind !== 'cluster') return parsed.options;
  return makeCluster(parsed, blocking ? { maxRetriesPerRequest: null } : {});
}

/** A plain ioredis client (an `IORedis` or a `Cluster`) for raw commands. */
export function makeClient(cfg, extra = {}) {
  const parsed = parseRedisUrl(cfg.redisUrl);
  if (parsed.kind === 'cluster') return makeCluster(parsed, extra);
  return new IORedis({ ...parsed.options, ...extra });
}

function makeCluster(parsed, extra) {
  const { lazyConnect, ...redisOptions } = extra;
  return new Cluster(parsed.nodes, {
    lazyConnect: lazyConnect ?? false,
    redisOptions: { ...parsed.redisOptions, ...redisOptions },
  });
}

/** Options shared by Queue / Worker / QueueEvents. */
export function baseOptions(cfg, { blocking = true } = {}) {
  return { connection: makeConnection(cfg, { blocking }), prefix: cfg.prefix };
}

/** Disconnect a Cluster instance `baseOptions` made (BullMQ leaves it open). */
export function releaseConnection(opts) {
  if (opts.connection && typeof opts.connection.disconnect === 'function') {
    opts.connection.disconnect();
  }
}

/** Write one JSON line to stdout. */
export function emitLine(obj) {
  process.stdout.write(JSON.stringify(obj, jsonReplacer) + '\n');
}

// JSON has no `undefined`; keep the key with a null so "absent" stays visible.
function jsonReplacer(_key, value) {
  return value === undefined ? null : value;
}

/** Exit after stdout has been flushed. */
export function exitAfterFlush(code) {
  process.stdout.write('', () => process.exit(code));
}

export function errorMessage(err) {
  if (!(err instanceof Error)) return String(err);
  if (err.message) return err.message;
  // e.g. an AggregateError of ECONNREFUSED for 127.0.0.1 and ::1
  if (Array.isArray(err.errors) && err.errors.length > 0) {
    return err.errors.map(errorMessage).join('; ');
  }
  return err.code ?? err.name;
}

/**
 * Calls `stop()` once, on SIGTERM/SIGINT or when stdin reaches EOF (unless the
 * config says `watchStdin: false`, for callers that cannot keep a pipe open).
 */
export function onStopRequest(cfg, stop) {
  let stopping = false;
  const once = (reason) => {
    if (stopping) return;
    stopping = true;
    stop(reason);
  };
  process.on('SIGTERM', () => once('SIGTERM'));
  process.on('SIGINT', () => once('SIGINT'));
  if (cfg.watchStdin !== false) {
    process.stdin.on('end', () => once('stdin-closed'));
    process.stdin.on('error', () => once('stdin-error'));
    process.stdin.resume();
  }
}

/** Stop watching stdin so the event loop can drain. */
export function releaseStdin() {
  process.stdin.pause();
  process.stdin.unref?.();
}

/** Reject with "<what> not ready after N ms" unless `promise` settles first. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} not ready after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Milliseconds sleep. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const TIME_FIELDS = ['timestamp', 'processedOn', 'finishedOn', 'stacktrace'];

/**
 * `job.toJSON()` with values that differ from run to run replaced:
 * timestamp/processedOn/finishedOn/stacktrace become "<ts>" when present and
 * null when absent. Everything else (including processedBy) is kept.
 */
export function normaliseJobJson(job) {
  const json = JSON.parse(JSON.stringify(job.toJSON(), jsonReplacer));
  for (const field of TIME_FIELDS) {
    const value = json[field];
    json[field] = value === undefined || value === null ? null : '<ts>';
  }
  return json;
}

/** Run `fn(cfg)`, print its result as the single JSON document, exit. */
export async function runOneShot(cfg, fn) {
  const timeoutMs = cfg.timeoutMs ?? 30000;
  const timer = setTimeout(() => {
    emitLine({ error: `timed out after ${timeoutMs} ms` });
    exitAfterFlush(1);
  }, timeoutMs);
  try {
    const result = await fn(cfg);
    clearTimeout(timer);
    emitLine(result);
    exitAfterFlush(0);
  } catch (err) {
    clearTimeout(timer);
    emitLine({ error: errorMessage(err) });
    exitAfterFlush(1);
  }
}

/** Run `fn(queue)` with a Queue that is always closed afterwards. */
export async function withQueue(Queue, cfg, fn) {
  const opts = baseOptions(cfg, { blocking: false });
  const queue = new Queue(cfg.queue, opts);
  queue.on('error', (err) => process.stderr.write(`queue error: ${errorMessage(err)}\n`));
  try {
    await queue.waitUntilReady();
    return await fn(queue);
  } finally {
    await queue.close().catch(() => {});
    releaseConnection(opts);
  }
}
