// How many tasks each crypto worker should run at once: `node bench/poolTasks.ts [rounds] [size] [tasks,...]`
// (default 4 rounds, 4096 bytes, 4,8). Each round measures (2) and (2b), openpgp.js on this thread one at a
// time and 16 in flight, then (3), the pool sized to the cores with 16 in flight, once for each number of
// tasks per worker, in the order given and reversed every other round, as `npm run bench` measures them
// (bench/crypto.ts). Prints each pool's seal and open rates and CPU µs per operation, and the pair's rate
// against (2) and (2b) of the same round. A measuring tool, not a section of `npm run bench`
// ("Tasks per crypto worker: 8").
import { installInlineSubtle } from '../services/core/envelope/inlineSubtle.ts';
import { benchInThread, benchPool, CRYPTO_CONCURRENCY, CRYPTO_WARMUP, cryptoCeiling, type CryptoResult } from './crypto.ts';
import { benchInline, makeBenchKeys, round } from './lib.ts';

const rounds = Number(process.argv[2] ?? 4);
const size = Number(process.argv[3] ?? 4096);
const tasks = (process.argv[4] ?? '4,8').split(',').map(Number);
if (!(rounds >= 1) || !(size >= 1) || tasks.some((t) => !(t >= 1))) throw new Error('usage: node bench/poolTasks.ts [rounds] [size] [tasks,...]');
const budget = { durationMs: 2500, maxOps: 20_000, warmup: CRYPTO_WARMUP };

const describe = (r: CryptoResult): string =>
  `seal ${round(r.seal.perSecond, 0)}/s ${round(r.seal.cpuUsPerOp, 0)} µs, open ${round(r.open.perSecond, 0)}/s ${round(r.open.cpuUsPerOp, 0)} µs, pair ${round(cryptoCeiling(r), 0)}/s`;

if (benchInline()) installInlineSubtle();
const keys = await makeBenchKeys();
try {
  console.log(`${size} bytes, ${rounds} rounds, tasks per worker ${tasks.join(', ')}; CPU µs per operation, all threads`);
  for (let i = 0; i < rounds; i++) {
    const [one] = await benchInThread(keys, [size], budget, 1);
    const [many] = await benchInThread(keys, [size], budget, CRYPTO_CONCURRENCY);
    console.log(`round ${i + 1}\n  (2) one at a time       ${describe(one!)}\n  (2b) ${CRYPTO_CONCURRENCY} in flight       ${describe(many!)}`);
    for (const t of i % 2 === 0 ? tasks : [...tasks].reverse()) {
      const { threads, results } = await benchPool(keys, [size], budget, t);
      const r = results[0]!;
      const ratios = `/ (2) ${round(cryptoCeiling(r) / cryptoCeiling(one!), 2)}, / (2b) ${round(cryptoCeiling(r) / cryptoCeiling(many!), 2)}`;
      console.log(`  (3) ${threads} workers × ${String(t).padEnd(2)}  ${describe(r)}; pair ${ratios}`);
    }
  }
} finally {
  await keys.cleanup();
}
