// `flow` command: a FlowProducer tree, and what its parent sees afterwards.
import { FlowProducer, Queue } from 'bullmq';
import { baseOptions, normaliseJobJson, releaseConnection } from './common.mjs';

/** config.flow: {name, queueName, data, opts, children: [...]} -> {tree: {id, children}} */
export async function flow(cfg) {
  const opts = baseOptions(cfg, { blocking: false });
  const producer = new FlowProducer(opts);
  try {
    const node = await producer.add(cfg.flow);
    return { tree: summarise(node) };
  } finally {
    await producer.close();
    releaseConnection(opts);
  }
}

/** config.id (+ queue): the parent's state, children values and failures (and
 * config.pages: one page of each kind named). */
export async function parent(cfg) {
  const opts = baseOptions(cfg, { blocking: false });
  const queue = new Queue(cfg.queue, opts);
  try {
    const job = await queue.getJob(String(cfg.id));
    if (!job) return { job: null };
    return {
      job: normaliseJobJson(job),
      state: await job.getState(),
      childrenValues: await job.getChildrenValues(),
      ignoredFailures: await job.getIgnoredChildrenFailures(),
      dependenciesCount: await job.getDependenciesCount(),
      dependencies: await job.getDependencies(),
      // config.pages: {processed: {cursor, count}, ...} -> BullMQ's paged reading
      ...(cfg.pages ? { pages: await job.getDependencies(cfg.pages) } : {}),
    };
  } finally {
    await queue.close();
    releaseConnection(opts);
  }
}

function summarise(node) {
  return { id: node.job.id, queue: node.job.queueName, children: (node.children ?? []).map(summarise) };
}
