// Shared helpers for the Node driver: config, connection options, JSON output,
// shutdown handling and job normalisation.

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

/** Turn `redis[s]://[user:pass@]host:port[/db]` into ioredis connection options. */
export function connectionFromUrl(redisUrl) {
  const url = new URL(redisUrl);
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new Error(`unsupported redisUrl scheme: ${url.protocol}`);
  }
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

/** Options shared by Queue / Worker / QueueEvents. */
export function baseOptions(cfg) {
  return { connection: connectionFromUrl(cfg.redisUrl), prefix: cfg.prefix };
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
  const queue = new Queue(cfg.queue, baseOptions(cfg));
  queue.on('error', (err) => process.stderr.write(`queue error: ${errorMessage(err)}\n`));
  try {
    await queue.waitUntilReady();
    return await fn(queue);
  } finally {
    await queue.close().catch(() => {});
  }
}
