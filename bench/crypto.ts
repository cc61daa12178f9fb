// (2) openpgp.js on the calling thread and (3) the project's crypto pool, seal and open.
import { availableParallelism } from 'node:os';
import { open } from '../services/core/envelope/open.ts';
import { seal } from '../services/core/envelope/seal.ts';
import { createCryptoPool } from '../services/core/relay/cryptoPool.ts';
import { benchInline, submissionEnvelope, timed, type BenchKeys, type Throughput } from './lib.ts';

/** Seal and open throughput of one crypto path for one payload size. */
export interface CryptoResult {
  /** Payload bytes. */
  size: number;
  /** Sign + encrypt. */
  seal: Throughput;
  /** Decrypt + verify + envelope checks. */
  open: Throughput;
  /** Bytes of the armored message. */
  armoredBytes: number;
}

/** Operations in flight for the concurrent runs (enough to keep every worker's queue full). */
export const CRYPTO_CONCURRENCY = 16;

const LIMITS = { maxSkewMs: 60_000, maxAgeMs: 3_600_000 };

/**
 * Operations each thread runs (uncounted) before a crypto figure is measured. V8 compiles
 * openpgp.js's hot functions in tiers as they are called: seal and open of 4 KiB, 16 in flight on one
 * thread, cost about a third more CPU per operation over the first ~500 operations than from ~1,000 on
 * (docs/benchmarks.md, "Steady state before measuring"). Each crypto worker is a thread of its own.
 */
export const CRYPTO_WARMUP = 1000;

/** openpgp.js on this thread, keys already loaded, `concurrency` operations in flight (1 = one after the other). */
export async function benchInThread(keys: BenchKeys, sizes: readonly number[], budget: { durationMs: number; maxOps: number; warmup: number }, concurrency: number): Promise<CryptoResult[]> {
  const ctx = { own: keys.app.keys.own, peers: keys.app.keys.peers, self: 'app', queue: 'interface-to-app', ...LIMITS };
  const results: CryptoResult[] = [];
  for (const size of sizes) {
    const envelope = submissionEnvelope(size);
    const sealed = await seal(envelope, keys.interface.keys.own, keys.interface.keys.peers);
    const s = await timed({ ...budget, concurrency }, () => seal(envelope, keys.interface.keys.own, keys.interface.keys.peers));
    const o = await timed({ ...budget, concurrency }, () => open(sealed.body, ctx));
    results.push({ size, seal: s, open: o, armoredBytes: sealed.body.length });
  }
  return results;
}

/**
 * The crypto pool sized to the cores (one pool per side, as each service has its own), each worker running
 * `tasksPerThread` tasks at once (the services' default unless given: bench/poolTasks.ts compares).
 */
export async function benchPool(keys: BenchKeys, sizes: readonly number[], budget: { durationMs: number; maxOps: number; warmup: number }, tasksPerThread?: number): Promise<{ threads: number; results: CryptoResult[] }> {
  const threads = availableParallelism();
  const common = { passphrase: keys.passphrase, threads, inline: benchInline(), ...(tasksPerThread === undefined ? {} : { tasksPerThread }) };
  const sealer = await createCryptoPool({ ...common, keysDir: keys.interface.dir, limits: { self: 'interface', ...LIMITS } });
  const opener = await createCryptoPool({ ...common, keysDir: keys.app.dir, limits: { self: 'app', ...LIMITS } });
  try {
    const results: CryptoResult[] = [];
    for (const size of sizes) {
      const envelope = submissionEnvelope(size);
      const sealed = await sealer.seal(envelope);
      // `warmup` per worker: the pool spreads the operations over its threads.
      const warm = { ...budget, concurrency: CRYPTO_CONCURRENCY, warmup: budget.warmup * threads };
      const s = await timed(warm, () => sealer.seal(envelope));
      // Only the pool being measured does work: the other one is idle.
      const o = await timed(warm, () => opener.open(sealed.body, { queue: 'interface-to-app' }));
      results.push({ size, seal: s, open: o, armoredBytes: sealed.body.length });
    }
    return { threads, results };
  } finally {
    await Promise.all([sealer.close(), opener.close()]);
  }
}

/**
 * Tasks per worker of the crypto pool as issue 17 found it (2026-11-23 until 2026-12-03): (3a) measures that pool in
 * the same run, the baseline of the target "seal + open CPU per message down by a third against today's code" since the
 * pool itself got cheaper ("Tasks per crypto worker: 8"). Its workers have every later change (the curve operations
 * on the calling thread, the key imports kept), so it costs less than the code of that day did: a strict baseline.
 */
export const ISSUE_DAY_TASKS_PER_THREAD = 4;

/** Messages per second if the cores did nothing but one seal and one open per message. */
export function cryptoCeiling(r: CryptoResult): number {
  return 1 / (1 / r.seal.perSecond + 1 / r.open.perSecond);
}
