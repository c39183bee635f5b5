#!/usr/bin/env node
// Node side of the bullmq-wire conformance harness.
//
//   node driver.mjs <command> '<json-config>'
//
// One-shot commands (add, inspect, control, raw) print exactly one JSON
// document and exit 0, or print {"error": "..."} and exit 1.
// Long-running commands (worker, events) print {"ready":true}, then one JSON
// line per event, and {"closed":true} after SIGTERM/SIGINT or stdin EOF.
// See ../README.md for the config keys of each command.
import { emitLine, errorMessage, exitAfterFlush, parseConfig, runOneShot } from './lib/common.mjs';
import { add, control, inspect } from './lib/queue-commands.mjs';
import { raw } from './lib/raw.mjs';
import { flow, parent } from './lib/flow.mjs';
import { runWorker } from './lib/worker.mjs';
import { runEvents } from './lib/events.mjs';
import { runProducer } from './lib/produce.mjs';

const oneShot = { add, inspect, control, raw, flow, parent };
const longRunning = { worker: runWorker, events: runEvents, produce: runProducer };

async function main() {
  const [command, rawConfig] = process.argv.slice(2);
  let cfg;
  try {
    cfg = parseConfig(rawConfig ?? '');
  } catch (err) {
    emitLine({ error: `bad config: ${errorMessage(err)}` });
    return exitAfterFlush(1);
  }
  if (oneShot[command]) return runOneShot(cfg, oneShot[command]);
  if (longRunning[command]) {
    try {
      await longRunning[command](cfg);
    } catch (err) {
      emitLine({ error: errorMessage(err) });
      exitAfterFlush(1);
    }
    return undefined;
  }
  const known = [...Object.keys(oneShot), ...Object.keys(longRunning)].join(', ');
  emitLine({ error: `unknown command ${JSON.stringify(command)}; expected one of ${known}` });
  return exitAfterFlush(1);
}

main();
