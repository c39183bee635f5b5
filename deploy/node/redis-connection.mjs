// ioredis connection options for the deploy scripts, from the environment.

/** `redis[s]://[user:pass@]host:port[/db]` as ioredis connection options. */
export function connectionFromUrl(redisUrl) {
  const url = new URL(redisUrl);
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new Error(`REDIS_URL: unsupported scheme ${url.protocol}`);
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

/** From REDIS_URL, or else REDIS_HOST (127.0.0.1), REDIS_PORT (6379) and REDIS_PASSWORD. */
export function redisConnection(env) {
  if (env.REDIS_URL) return connectionFromUrl(env.REDIS_URL);
  const opts = {
    host: env.REDIS_HOST || '127.0.0.1',
    port: env.REDIS_PORT ? Number(env.REDIS_PORT) : 6379,
  };
  if (env.REDIS_PASSWORD) opts.password = env.REDIS_PASSWORD;
  return opts;
}

/** The BullMQ key prefix: BULL_PREFIX, or BULLMQ_PREFIX, or `bull`. */
export function bullPrefix(env) {
  return env.BULL_PREFIX || env.BULLMQ_PREFIX || 'bull';
}
