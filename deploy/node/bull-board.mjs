#!/usr/bin/env node
// Bull Board (the BullMQ web UI) for the queues this project uses.
//
//   node bull-board.mjs
//
// Environment:
//   REDIS_URL    redis://[user:pass@]host:port[/db], rediss://..., redis+cluster://h:p,h:p or redis+sentinel://h:p,h:p/master; when unset,
//                REDIS_HOST (default 127.0.0.1), REDIS_PORT (default 6379) and
//                REDIS_PASSWORD are used instead
//   BULL_PREFIX  BullMQ key prefix (default bull; BULLMQ_PREFIX works too)
//   QUEUES       comma-separated queue names (default demo,data,analysis)
//   PORT         HTTP port (default 3000); HOST: address to bind (default 0.0.0.0)
//   BASE_PATH    URL path the board is served under (default /)
//   READ_ONLY    true: hide retry/clean/remove buttons (default false)
//
// Routes: the UI at BASE_PATH, its JSON API under BASE_PATH/api (e.g.
// GET /api/queues?activeQueue=demo&status=latest lists the counts of every
// queue and the latest jobs of `demo`), and GET /healthz (200 while Redis
// answers PING, 503 otherwise) for container health checks.
import { createServer } from 'node:http';
import express from 'express';
import { Queue } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { bullPrefix, describeConnection, redisConnection } from './redis-connection.mjs';

function settings(env) {
  const queues = (env.QUEUES || 'demo,data,analysis')
    .split(',')
    .map((q) => q.trim())
    .filter((q) => q !== '');
  if (queues.length === 0) throw new Error('QUEUES names no queue');
  const port = Number(env.PORT || 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT: not a port number: ${env.PORT}`);
  }
  let basePath = env.BASE_PATH || '/';
  if (!basePath.startsWith('/')) basePath = `/${basePath}`;
  if (basePath.length > 1) basePath = basePath.replace(/\/+$/, '');
  return {
    connection: redisConnection(env),
    prefix: bullPrefix(env),
    queues,
    port,
    host: env.HOST || '0.0.0.0',
    basePath,
    readOnly: /^(1|true|yes)$/i.test(env.READ_ONLY || ''),
  };
}

async function main() {
  const cfg = settings(process.env);
  const queues = cfg.queues.map((name) => {
    const queue = new Queue(name, { connection: cfg.connection, prefix: cfg.prefix });
    // Without a listener ioredis errors (Redis down for a moment) would be
    // thrown as unhandled; the board keeps serving and reconnects.
    queue.on('error', (err) => console.error(`queue ${name}: ${err.message || err}`));
    return queue;
  });

  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(cfg.basePath);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: cfg.readOnly })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'bullmq-wire' } },
  });

  // A separate connection for /healthz that fails fast while Redis is down
  // (no offline queue) instead of waiting for a reconnect.
  const health =
    cfg.connection instanceof Cluster
      ? cfg.connection.duplicate()
      : new Redis({ ...cfg.connection, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  health.on('error', () => {});

  const app = express();
  app.get('/healthz', async (_req, res) => {
    try {
      await health.ping();
      res.type('text/plain').send('ok\n');
    } catch (err) {
      res.status(503).type('text/plain').send(`redis unavailable: ${err.message || err}\n`);
    }
  });
  app.use(cfg.basePath, serverAdapter.getRouter());

  const server = createServer(app);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.host, resolve);
  });
  const { port } = server.address();
  const where = describeConnection(cfg.connection);
  console.log(
    `bull-board on http://${cfg.host === '0.0.0.0' ? '127.0.0.1' : cfg.host}:${port}${cfg.basePath}` +
      ` (queues ${cfg.queues.join(', ')}, prefix ${cfg.prefix}, redis ${where})`,
  );

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    console.log(`bull-board: ${signal}, closing`);
    server.closeAllConnections?.();
    await new Promise((resolve) => server.close(resolve));
    await Promise.all(queues.map((q) => q.close().catch(() => {})));
    health.disconnect();
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  console.error(`bull-board: ${err.message || err}`);
  process.exit(1);
});
