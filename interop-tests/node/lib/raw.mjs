// `raw` command: dump every Redis key of a queue with its type and value.
import { makeClient } from './common.mjs';

export async function raw(cfg) {
  const redis = makeClient(cfg, { lazyConnect: true });
  await redis.connect();
  try {
    const pattern = cfg.pattern ?? `${cfg.prefix}:${cfg.queue}:*`;
    const keys = await scanAll(redis, pattern);
    keys.sort();
    const out = {};
    for (const key of keys) {
      const type = await redis.type(key);
      if (type === 'none') continue; // expired/removed between SCAN and TYPE
      const entry = { type, value: await readValue(redis, key, type) };
      const pttl = await redis.pttl(key);
      if (pttl >= 0) entry.pttl = pttl;
      out[key] = entry;
    }
    return { keys: out };
  } finally {
    redis.disconnect();
  }
}

// On a cluster every master holds its own keys: scan each (a queue's keys
// share a hash tag, so they are all on one of them).
async function scanAll(redis, pattern) {
  const found = new Set();
  const nodes = typeof redis.nodes === 'function' && redis.isCluster ? redis.nodes('master') : [redis];
  for (const node of nodes) await scanNode(node, pattern, found);
  return [...found];
}

async function scanNode(redis, pattern, found) {
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    batch.forEach((k) => found.add(k));
    cursor = next;
  } while (cursor !== '0');
}

async function readValue(redis, key, type) {
  switch (type) {
    case 'string':
      return redis.get(key);
    case 'list':
      return redis.lrange(key, 0, -1);
    case 'set':
      return (await redis.smembers(key)).sort();
    case 'zset': {
      const flat = await redis.zrange(key, 0, -1, 'WITHSCORES');
      const pairs = [];
      // Redis scores are doubles, so Number() is exact.
      for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i], Number(flat[i + 1])]);
      return pairs;
    }
    case 'hash':
      return redis.hgetall(key);
    case 'stream': {
      const entries = await redis.xrange(key, '-', '+');
      return entries.map(([id, fields]) => [id, pairsToObject(fields)]);
    }
    default:
      return null;
  }
}

function pairsToObject(flat) {
  const obj = {};
  for (let i = 0; i < flat.length; i += 2) obj[flat[i]] = flat[i + 1];
  return obj;
}
