// ioredis connection for the deploy scripts, from the environment: the same
// URLs as the Rust binaries (one server, a Redis Cluster, or Sentinel).
import { Cluster } from 'ioredis';

const decode = (s) => decodeURIComponent(s);

/** `host:port,host:port` as ioredis node addresses. */
function nodes(hosts, defaultPort) {
  return hosts
    .split(',')
    .filter(Boolean)
    .map((h) => {
      const m = /^\[(.+)\](?::(\d+))?$/.exec(h) || /^([^:]+)(?::(\d+))?$/.exec(h);
      if (!m) throw new Error(`REDIS_URL: bad host ${JSON.stringify(h)}`);
      return { host: m[1], port: m[2] ? Number(m[2]) : defaultPort };
    });
}

/**
 * - `redis[s]://[user:pass@]host:port[/db]`: ioredis options for one server.
 * - `redis[s]+cluster://[user:pass@]host:port,host:port`: an ioredis `Cluster`
 *   (BullMQ takes the instance; use a hash-tagged prefix such as `{bull}`).
 * - `redis[s]+sentinel://[user:pass@]host:port,.../master[/db][?sentinel_password=..]`:
 *   ioredis sentinel options.
 */
export function connectionFromUrl(redisUrl) {
  const m = /^([a-z+]+):\/\/(?:([^@/]*)@)?([^/?]+)(\/[^?]*)?(?:\?(.*))?$/i.exec(redisUrl);
  if (!m) throw new Error('REDIS_URL: not a redis URL');
  const [, scheme, userinfo, hosts, path = '', query = ''] = m;
  const [user, password] = userinfo ? userinfo.split(/:(.*)/s) : [];
  const auth = {};
  if (user) auth.username = decode(user);
  if (password) auth.password = decode(password);
  const tls = scheme.startsWith('rediss');
  const segments = path.split('/').filter(Boolean);
  switch (scheme.toLowerCase()) {
    case 'redis':
    case 'rediss': {
      const [node] = nodes(hosts, 6379);
      const opts = { ...node, ...auth };
      if (segments[0] !== undefined) opts.db = Number(segments[0]);
      if (tls) opts.tls = { servername: node.host };
      return opts;
    }
    case 'redis+cluster':
    case 'rediss+cluster':
      return new Cluster(nodes(hosts, 6379), {
        redisOptions: { ...auth, ...(tls ? { tls: {} } : {}), maxRetriesPerRequest: null },
      });
    case 'redis+sentinel':
    case 'rediss+sentinel': {
      if (!segments[0]) throw new Error('REDIS_URL: a sentinel URL names the master: /mymaster');
      const opts = { sentinels: nodes(hosts, 26379), name: decode(segments[0]), ...auth };
      if (segments[1] !== undefined) opts.db = Number(segments[1]);
      for (const [k, v] of new URLSearchParams(query)) {
        if (k === 'sentinel_password') opts.sentinelPassword = v;
        else if (k === 'sentinel_username') opts.sentinelUsername = v;
        else throw new Error(`REDIS_URL: unknown parameter ${k}`);
      }
      if (tls) opts.tls = {};
      return opts;
    }
    default:
      throw new Error(`REDIS_URL: unsupported scheme ${scheme}`);
  }
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

/** Where a connection points, for logs (never a password). */
export function describeConnection(connection) {
  if (connection instanceof Cluster) {
    return `cluster ${connection.startupNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  }
  if (connection.sentinels) {
    return `master ${connection.name} of sentinels ${connection.sentinels.map((n) => `${n.host}:${n.port}`).join(',')}`;
  }
  return `${connection.host}:${connection.port}`;
}

/** The BullMQ key prefix: BULL_PREFIX, or BULLMQ_PREFIX, or `bull`. */
export function bullPrefix(env) {
  return env.BULL_PREFIX || env.BULLMQ_PREFIX || 'bull';
}
