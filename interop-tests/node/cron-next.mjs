// Next run times of cron patterns as BullMQ computes them (cron-parser,
// through bullmq's own dependency): reads [{pattern, tz, after}] as JSON on
// argv[2], prints [next ms | null] as JSON.
import { createRequire } from 'module';

const require = createRequire(import.meta.url);
const bullmqDir = require.resolve('bullmq').replace(/dist[\/\\]cjs[\/\\].*$/, '');
const { CronExpressionParser } = createRequire(bullmqDir + 'package.json')('cron-parser');

const cases = JSON.parse(process.argv[2]);
const out = cases.map(({ pattern, tz, after }) => {
  try {
    const opts = { currentDate: new Date(after) };
    if (tz) opts.tz = tz;
    return CronExpressionParser.parse(pattern, opts).next().getTime();
  } catch (e) {
    return null;
  }
});
console.log(JSON.stringify(out));
