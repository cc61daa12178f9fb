// `npm run bench`: one run, bounded in time, of every figure in docs/benchmarks.md.
// Prints a table with the ratios and writes bench/results/<timestamp>.json and latest.json.
// Flags: --quick (short budgets, a smoke run), --only=gpg,thread,pool,sqs,e2e,latency,memory,mllp,cpu,store,large,
// --crypto-workers=N, --latency-rate=SIZE:RATE,... (fixed open-loop rates for (5)), --cpu-clients=N (clients of (8), default 16),
// --emulators=child (the SQS and DynamoDB emulators in a process of their own instead of this one),
// --cpu-profile (each service's main thread in (8) split by part), --cpu-seconds=N (how long (8) measures per size),
// --warmup=N (submissions of each size sent to the services of (5), (5b) and (8) before measuring; default 3,000).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import { defaultCryptoWorkers } from '../services/core/config/common.ts';
import { DEFAULT_TASKS_PER_THREAD } from '../services/core/relay/cryptoPool.ts';
import { benchInThread, benchPool, cryptoCeiling, CRYPTO_CONCURRENCY, CRYPTO_WARMUP, ISSUE_DAY_TASKS_PER_THREAD, type CryptoResult } from './crypto.ts';
import { benchCpu, reportCpu, type CpuResult, type ServiceCpu } from './cpu.ts';
import { benchMachineryFloor, reportMachineryFloor, type MachineryFloor } from './machineryFloor.ts';
import { benchE2e, E2E_CLIENTS, type E2eResult } from './e2e.ts';
import { benchGpg, gpgVersion, hasGpg, type GpgResult } from './gpg.ts';
import { benchLatency, reportLatency, type LatencyResult } from './latency.ts';
import { benchInline, makeBenchKeys, round, SERVICE_WARMUP, SIZES, submissionEnvelope } from './lib.ts';
import { installInlineSubtle } from '../services/core/envelope/inlineSubtle.ts';
import { benchMemory, type MemoryResult } from './memory.ts';
import { benchMllp, type MllpResult } from './mllp.ts';
import { benchLarge, printLarge, type LargeResult } from './large.ts';
import { benchSqs, SQS_CONCURRENCY, type SqsResult } from './sqs.ts';
import { startBenchSqs, startBenchStack } from './stack.ts';
import { benchStore, storeLines, type StoreRun } from './store.ts';
import { seal } from '../services/core/envelope/seal.ts';

const quick = process.argv.includes('--quick');
const onlyArg = process.argv.find((a) => a.startsWith('--only='));
const only = onlyArg ? new Set(onlyArg.slice('--only='.length).split(',')) : undefined;
const want = (name: string): boolean => !only || only.has(name);
// CRYPTO_WORKERS for the services of (5) and (6); the services' default (the cores) when absent.
const workersArg = process.argv.find((a) => a.startsWith('--crypto-workers='))?.slice('--crypto-workers='.length);
const q = (full: number, short: number): number => (quick ? short : full);
// --latency-rate=4096:150,65536:60 runs the latency loop of (5) at those rates instead of half the maximum.
const latencyRateArg = process.argv.find((a) => a.startsWith('--latency-rate='))?.slice('--latency-rate='.length);
// --cpu-clients=64 runs (8) with that many HTTP clients instead of 16 (how the share moves as batches fill).
const cpuClientsArg = process.argv.find((a) => a.startsWith('--cpu-clients='))?.slice('--cpu-clients='.length);
const cpuClients = cpuClientsArg === undefined ? undefined : Number(cpuClientsArg);
if (cpuClients !== undefined && !(Number.isInteger(cpuClients) && cpuClients >= 1 && cpuClients <= 1024)) throw new Error(`--cpu-clients must be a whole number from 1 to 1024, not ${cpuClientsArg}`);
const emulatorsValue = process.argv.find((a) => a.startsWith('--emulators='))?.slice('--emulators='.length) ?? 'process';
if (emulatorsValue !== 'process' && emulatorsValue !== 'child') throw new Error(`--emulators must be process or child, not ${emulatorsValue}`);
const emulatorsArg: 'process' | 'child' = emulatorsValue;
// --cpu-profile samples each service's main thread during (8) and splits its CPU by part; --cpu-seconds=N
// measures (8) for N seconds per size instead of 6 (the profile's split steadier, the JIT's warm-up a smaller part).
const cpuProfile = process.argv.includes('--cpu-profile');
const cpuSecondsArg = process.argv.find((a) => a.startsWith('--cpu-seconds='))?.slice('--cpu-seconds='.length);
const cpuSeconds = cpuSecondsArg === undefined ? undefined : Number(cpuSecondsArg);
if (cpuSeconds !== undefined && !(Number.isFinite(cpuSeconds) && cpuSeconds >= 1 && cpuSeconds <= 3600)) throw new Error(`--cpu-seconds must be a number of seconds from 1 to 3600, not ${cpuSecondsArg}`);
// --warmup=N sends N submissions of each size to the services of (5), (5b) and (8) before they are measured
// (default SERVICE_WARMUP, the JIT's steady state; 128 with --quick).
const warmupArg = process.argv.find((a) => a.startsWith('--warmup='))?.slice('--warmup='.length);
const warmupValue = warmupArg === undefined ? undefined : Number(warmupArg);
if (warmupValue !== undefined && !(Number.isInteger(warmupValue) && warmupValue >= 0 && warmupValue <= 1_000_000)) throw new Error(`--warmup must be a whole number of submissions from 0 to 1000000, not ${warmupArg}`);
const warmup = warmupValue ?? q(SERVICE_WARMUP, 128);
const latencyRates = latencyRateArg ? new Map(latencyRateArg.split(',').map((p) => p.split(':').map(Number) as [number, number])) : undefined;

const budgets = {
  gpg: { durationMs: q(3000, 600), maxOps: q(300, 20) },
  crypto: { durationMs: q(2500, 500), maxOps: q(20_000, 500), warmup: q(CRYPTO_WARMUP, 20) },
  sqs: { durationMs: q(2500, 500), maxOps: q(50_000, 500) },
  e2e: { maxDurationMs: q(8000, 1500), latencyDurationMs: q(8000, 1500), maxOps: q(100_000, 2000), warmup, ...(latencyRates ? { latencyRates } : {}) },
  latency: { maxDurationMs: q(8000, 1500), latencyDurationMs: q(20_000, 1500), maxOps: q(100_000, 2000), warmup, ...(latencyRates ? { latencyRates } : {}) },
  memory: { records: q(10_000, 1000), size: 4096 },
  mllp: { durationMs: q(5000, 1000), maxOps: q(20_000, 200), deliveries: q(500, 30) },
  cpu: { ...(cpuSeconds === undefined ? { durationMs: q(6000, 1500), maxOps: q(20_000, 300) } : { durationMs: cpuSeconds * 1000, maxOps: 1_000_000 }), warmup },
  store: { durationMs: q(6000, 1500), maxOps: q(50_000, 1000) },
};

function cpuModel(): string {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const kib = (n: number): string => `${n / 1024} KiB`;
const mib = (n: number): string => `${n >= 0 ? '+' : ''}${(n / 1024 ** 2).toFixed(1)} MiB`;
const fmt = (n: number | undefined, digits = 0): string => (n === undefined || !Number.isFinite(n) ? 'n/a' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
const pair = (r: { seal: { perSecond: number }; open: { perSecond: number } }): number => 1 / (1 / r.seal.perSecond + 1 / r.open.perSecond);

async function main(): Promise<void> {
  const startedAt = new Date();
  const t0 = performance.now();
  // As the services do (CRYPTO_INLINE), before any key is loaded: (2), (2b) and (3) then measure their path.
  const cryptoInline = benchInline();
  if (cryptoInline) installInlineSubtle();
  const machine = { cores: availableParallelism(), cpuModel: cpuModel(), node: process.version, memoryGiB: round(totalmem() / 1024 ** 3, 1), loadAverageAtStart: round(loadavg()[0]!, 2), gpg: hasGpg() ? gpgVersion() : 'not installed', emulators: emulatorsArg, cryptoInline };
  console.log(`care-relay bench: ${machine.cores} cores, ${machine.cpuModel}, Node ${machine.node}, load average ${machine.loadAverageAtStart}${quick ? ' (quick)' : ''}${emulatorsArg === 'child' ? ', emulators in a child process' : ''}${cryptoInline ? '' : ', CRYPTO_INLINE=false (WebCrypto jobs on libuv\'s pool)'}`);
  const keys = await makeBenchKeys();
  const sqs = await startBenchSqs(emulatorsArg);
  const runId = randomBytes(3).toString('hex');
  const results: {
    gpg?: GpgResult[];
    gpgBest?: GpgResult[];
    inThread?: CryptoResult[];
    inThreadConcurrent?: CryptoResult[];
    pool?: { threads: number; results: CryptoResult[] };
    poolIssueDay?: { threads: number; results: CryptoResult[] };
    sqs?: SqsResult[];
    e2e?: E2eResult[];
    latency?: LatencyResult[];
    memory?: MemoryResult;
    mllp?: MllpResult;
    cpu?: CpuResult[];
    /** (8)'s lower bound of each service's machinery in this design (bench/machineryFloor.ts). */
    cpuFloor?: MachineryFloor;
    store?: StoreRun[];
    large?: LargeResult;
  } = {};
  const step = (name: string): void => console.log(`  [${round((performance.now() - t0) / 1000, 0)} s] ${name}`);
  try {
    if (want('gpg') && hasGpg()) {
      step('(1) GnuPG, one process per message');
      results.gpg = await benchGpg(keys, SIZES, budgets.gpg);
      step('(1b) GnuPG at its best: unprotected keys, warm agent');
      results.gpgBest = await benchGpg(keys, SIZES, budgets.gpg, 'best');
    }
    if (want('thread')) {
      step('(2) openpgp.js on this thread');
      results.inThread = await benchInThread(keys, SIZES, budgets.crypto, 1);
      results.inThreadConcurrent = await benchInThread(keys, SIZES, budgets.crypto, CRYPTO_CONCURRENCY);
    }
    if (want('pool')) {
      step('(3) crypto pool sized to the cores');
      results.pool = await benchPool(keys, SIZES, budgets.crypto);
      step(`(3a) the pool as issue 17 found it: ${ISSUE_DAY_TASKS_PER_THREAD} tasks per worker`);
      results.poolIssueDay = await benchPool(keys, SIZES, budgets.crypto, ISSUE_DAY_TASKS_PER_THREAD);
    }
    if (want('sqs')) {
      step('(4) raw SQS round trip');
      const bodies = await Promise.all(SIZES.map(async (size) => ({ size, body: (await seal(submissionEnvelope(size), keys.interface.keys.own, keys.interface.keys.peers)).body })));
      results.sqs = await benchSqs(sqs.client, `b${runId}-`, bodies, budgets.sqs);
    }
    if (want('e2e')) {
      step('(5) end to end');
      const stack = await startBenchStack(sqs, keys, `e${runId}-`, workersArg);
      try {
        results.e2e = await benchE2e(stack, SIZES, budgets.e2e);
      } finally {
        await stack.stop();
      }
    }
    if (want('latency')) {
      step('(5b) tail latency, each service in its own process');
      results.latency = await benchLatency(sqs, keys, `t${runId}-`, SIZES, budgets.latency, workersArg);
    }
    if (want('memory')) {
      step('(6) app memory with records held');
      results.memory = await benchMemory(sqs, keys, `m${runId}-`, budgets.memory.records, budgets.memory.size, workersArg);
    }
    if (want('mllp')) {
      step('(7) HL7 v2 over MLLP next to HTTP');
      results.mllp = await benchMllp(sqs, keys, `l${runId}-`, budgets.mllp);
    }
    if (want('cpu')) {
      step('(8) CPU per message, per service process');
      results.cpu = await benchCpu(sqs, keys, `c${runId}-`, SIZES, budgets.cpu, workersArg, cpuClients, cpuProfile);
      step('(8) the machinery\'s lower bound in this design');
      results.cpuFloor = await benchMachineryFloor(quick ? 1 : 3);
    }
    if (want('store')) {
      step('(9) state store: calls per message, with and without it');
      results.store = await benchStore(sqs, keys, `s${runId}-`, budgets.store, workersArg);
    }
    if (want('large')) {
      step('(10) large documents through S3 next to gpg streaming');
      results.large = await benchLarge(sqs, keys, quick ? [10] : [10, 100]);
    }
  } finally {
    await sqs.stop();
    await keys.cleanup();
  }
  const seconds = (performance.now() - t0) / 1000;
  // Other work on the machine skews every figure: the 1-minute load average says how much there was.
  const loadAverageAtEnd = round(loadavg()[0]!, 2);
  step('done');

  const bySize = <T extends { size: number }>(list: T[] | undefined, size: number): T | undefined => list?.find((r) => r.size === size);
  // The crypto path the services take here: in-thread (2b) or the pool (3), per CRYPTO_WORKERS' default or --crypto-workers.
  const servicesWorkers = workersArg === undefined ? defaultCryptoWorkers() : Number(workersArg);
  const servicesPathName = servicesWorkers === 0 ? `in-thread, ${CRYPTO_CONCURRENCY} in flight (2b)` : 'the pool (3)';
  const servicesPath = (size: number): CryptoResult | undefined => (servicesWorkers === 0 ? bySize(results.inThreadConcurrent, size) : bySize(results.pool?.results, size));
  const cpuPair = (r: CryptoResult | undefined): number | undefined => (r ? r.seal.cpuUsPerOp + r.open.cpuUsPerOp : undefined);
  const ratios = SIZES.map((size) => {
    const g = bySize(results.gpg, size);
    const gb = bySize(results.gpgBest, size);
    const t = bySize(results.inThread, size);
    const tc = bySize(results.inThreadConcurrent, size);
    const p = bySize(results.pool?.results, size);
    const pi = bySize(results.poolIssueDay?.results, size);
    const e = bySize(results.e2e, size);
    return {
      size,
      poolVsThread: { seal: ratio(p?.seal.perSecond, t?.seal.perSecond), open: ratio(p?.open.perSecond, t?.open.perSecond), pair: p && t ? pair(p) / pair(t) : undefined },
      poolVsThreadConcurrent: { seal: ratio(p?.seal.perSecond, tc?.seal.perSecond), open: ratio(p?.open.perSecond, tc?.open.perSecond), pair: p && tc ? pair(p) / pair(tc) : undefined },
      poolVsGpg: { seal: ratio(p?.seal.perSecond, g?.seal.perSecond), open: ratio(p?.open.perSecond, g?.open.perSecond), pair: p && g ? pair(p) / pair(g) : undefined },
      poolVsGpgBest: { seal: ratio(p?.seal.perSecond, gb?.seal.perSecond), open: ratio(p?.open.perSecond, gb?.open.perSecond), pair: p && gb ? pair(p) / pair(gb) : undefined },
      // Seal + open CPU per message of the services' path against the pool (3) and against the pool as issue 17 found it (3a).
      servicesPathVsPoolCpu: servicesWorkers === 0 ? ratio(cpuPair(tc), cpuPair(p)) : p ? 1 : undefined,
      servicesPathVsIssueDayPoolCpu: ratio(cpuPair(servicesPath(size)), cpuPair(pi)),
      e2eVsCryptoCeiling: ratio(e?.max.perSecond, servicesPath(size) ? cryptoCeiling(servicesPath(size)!) : undefined),
      cryptoCeiling: servicesPath(size) ? cryptoCeiling(servicesPath(size)!) : undefined,
    };
  });
  const r4 = ratios.find((r) => r.size === 4096);
  const e4 = bySize(results.e2e, 4096);
  const machinery = (s: ServiceCpu | undefined): number | undefined => s?.measured?.machineryShare ?? s?.machineryShare;
  const m = results.memory;
  const targets = [
    { name: '(3) ≥ 1.8 × (2), seal+open, 4 KiB', value: r4?.poolVsThread.pair, goal: 1.8 },
    { name: '(3) ≥ 10 × (1b) GnuPG at its best, seal+open, 4 KiB', value: r4?.poolVsGpgBest.pair, goal: 10 },
    {
      name: `(3) seal+open CPU per message, 4 KiB, the services' path here (${servicesPathName}) / the pool as issue 17 found it (3a): down by a third`,
      value: r4?.servicesPathVsIssueDayPoolCpu,
      goal: 2 / 3,
      atMost: true,
    },
    { name: '(5) ≥ 0.8 × crypto-only ceiling, 4 KiB', value: r4?.e2eVsCryptoCeiling, goal: 0.8 },
    { name: '(5) ≥ 1,000 messages/s of 4 KiB', value: e4?.max.perSecond, goal: 1000 },
    { name: '(5) p99 ≤ 50 ms at half rate, 4 KiB', value: e4?.halfRate.p99Ms, goal: 50, atMost: true },
    { name: '(5b) p99 ≤ 50 ms at half rate, 4 KiB, each service in its own process', value: bySize(results.latency, 4096)?.halfRate.p99Ms, goal: 50, atMost: true },
    // With --cpu-profile the crypto is measured in the service (the split by part), not estimated.
    { name: `(8) machinery ≤ 20 % of the interface's CPU per message, 4 KiB${cpuProfile ? ', crypto measured in the service' : ''}`, value: machinery(bySize(results.cpu, 4096)?.interface), goal: 0.2, atMost: true },
    { name: `(8) machinery ≤ 20 % of the app's CPU per message, 4 KiB${cpuProfile ? ', crypto measured in the service' : ''}`, value: machinery(bySize(results.cpu, 4096)?.app), goal: 0.2, atMost: true },
    { name: '(6) RSS delta ≤ 2.5 × payload + 100 MiB', value: m ? m.deltaRss / 1024 ** 2 : undefined, goal: m ? m.budgetBytes / 1024 ** 2 : 0, atMost: true },
    { name: `(6) the same after ${m?.idle.seconds ?? '?'} s idle, records still held`, value: m ? m.idle.deltaRss / 1024 ** 2 : undefined, goal: m ? m.budgetBytes / 1024 ** 2 : 0, atMost: true },
  ].map((t) => ({ ...t, met: t.value === undefined ? undefined : t.atMost ? t.value <= t.goal : t.value >= t.goal }));

  // The table.
  const rows: string[][] = [['', ...SIZES.map(kib)]];
  const row = (label: string, f: (size: number) => string): void => void rows.push([label, ...SIZES.map(f)]);
  const so = (r: CryptoResult | GpgResult | undefined): string => (r ? `${fmt(r.seal.perSecond)} / ${fmt(r.open.perSecond)}` : 'n/a');
  row('(1) GnuPG, process per message: seal / open msg/s', (s) => so(bySize(results.gpg, s)));
  row('(1b) GnuPG at its best (unprotected keys): seal / open', (s) => so(bySize(results.gpgBest, s)));
  row('(2) openpgp.js, 1 thread, 1 at a time: seal / open', (s) => so(bySize(results.inThread, s)));
  row(`(2b) openpgp.js, 1 thread, ${CRYPTO_CONCURRENCY} in flight: seal / open`, (s) => so(bySize(results.inThreadConcurrent, s)));
  row(`(3) crypto pool, ${results.pool?.threads ?? '?'} threads × ${DEFAULT_TASKS_PER_THREAD} tasks: seal / open`, (s) => so(bySize(results.pool?.results, s)));
  row(`(3a) the pool as issue 17 found it, × ${ISSUE_DAY_TASKS_PER_THREAD} tasks: seal / open`, (s) => so(bySize(results.poolIssueDay?.results, s)));
  const us = (r: CryptoResult | undefined): string => (r ? `${fmt(r.seal.cpuUsPerOp)} / ${fmt(r.open.cpuUsPerOp)}` : 'n/a');
  row('    (2) CPU µs per seal / open, 1 at a time', (s) => us(bySize(results.inThread, s)));
  row(`    (2b) CPU µs per seal / open, ${CRYPTO_CONCURRENCY} in flight`, (s) => us(bySize(results.inThreadConcurrent, s)));
  row('    (3) CPU µs per seal / open, pool', (s) => us(bySize(results.pool?.results, s)));
  row('    (3a) CPU µs per seal / open, the pool as issue 17 found it', (s) => us(bySize(results.poolIssueDay?.results, s)));
  row(`    services' path here: ${servicesPathName}; its seal+open CPU / (3)'s; / (3a)'s`, (s) => {
    const r = ratios.find((x) => x.size === s);
    return `${fmt(r?.servicesPathVsPoolCpu, 2)}; ${fmt(r?.servicesPathVsIssueDayPoolCpu, 2)}`;
  });
  row(`    crypto-only ceiling (1 seal + 1 open per msg, services' path)`, (s) => fmt(ratios.find((r) => r.size === s)?.cryptoCeiling));
  row(`(4) SQS send+receive+delete, ${SQS_CONCURRENCY} loops: round trips/s`, (s) => fmt(bySize(results.sqs, s)?.roundTrip.perSecond));
  row(`(5) end to end, ${E2E_CLIENTS} clients, after ${warmup} warm-up: msg/s`, (s) => fmt(bySize(results.e2e, s)?.max.perSecond));
  row('    SQS calls per message, both services', (s) => {
    const c = bySize(results.e2e, s)?.sqsCallsPerMessage;
    return c ? fmt(Object.values(c).reduce((a, b) => a + b, 0), 2) : 'n/a';
  });
  row(latencyRates ? '    at a fixed rate: p50 / p95 / p99 ms' : '    at half rate: p50 / p95 / p99 ms', (s) => {
    const h = bySize(results.e2e, s)?.halfRate;
    return h ? `${fmt(h.p50Ms, 1)} / ${fmt(h.p95Ms, 1)} / ${fmt(h.p99Ms, 1)}` : 'n/a';
  });
  row('ratio (3)/(2) seal / open / pair', (s) => {
    const r = ratios.find((x) => x.size === s)!.poolVsThread;
    return `${fmt(r.seal, 2)} / ${fmt(r.open, 2)} / ${fmt(r.pair, 2)}`;
  });
  row('ratio (3)/(2b) seal / open / pair', (s) => {
    const r = ratios.find((x) => x.size === s)!.poolVsThreadConcurrent;
    return `${fmt(r.seal, 2)} / ${fmt(r.open, 2)} / ${fmt(r.pair, 2)}`;
  });
  row('ratio (3)/(1) seal / open / pair', (s) => {
    const r = ratios.find((x) => x.size === s)!.poolVsGpg;
    return `${fmt(r.seal, 1)} / ${fmt(r.open, 1)} / ${fmt(r.pair, 1)}`;
  });
  row('ratio (3)/(1b) seal / open / pair', (s) => {
    const r = ratios.find((x) => x.size === s)!.poolVsGpgBest;
    return `${fmt(r.seal, 1)} / ${fmt(r.open, 1)} / ${fmt(r.pair, 1)}`;
  });
  row('ratio (5)/(3) e2e / crypto ceiling', (s) => fmt(ratios.find((x) => x.size === s)!.e2eVsCryptoCeiling, 2));
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  console.log('');
  for (const r of rows) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('   '));
  for (const e of results.e2e ?? []) {
    console.log(`\n(5) SQS calls per message at ${kib(e.size)}: ${Object.entries(e.sqsCallsPerMessage).map(([op, n]) => `${op} ${fmt(n, 2)}`).join(', ')}`);
    console.log(`(5) event-loop utilisation of the one process during the open loop at ${kib(e.size)}: ${e.loopUtilisation}`);
  }
  if (results.latency) console.log(`\n${reportLatency(results.latency, emulatorsArg).join('\n')}`);
  if (m) {
    console.log(
      `\n(6) app RSS with ${fmt(m.records)} records of ${kib(m.size)} held: +${fmt(m.deltaRss / 1024 ** 2, 1)} MiB ` +
        `(${fmt(m.deltaRss / m.payloadBytes, 2)} × payload; budget ${fmt(m.budgetBytes / 1024 ** 2, 0)} MiB), filled in ${fmt(m.secondsToFill, 1)} s; ` +
        `main V8 heap +${fmt((m.heapUsed - m.baselineHeapUsed) / 1024 ** 2, 1)} MiB (${fmt((m.heapUsed - m.baselineHeapUsed) / Math.max(1, m.records), 0)} bytes per record), external ${fmt(m.external / 1024 ** 2, 1)} MiB`,
    );
    const parts = (p: MemoryResult['riseParts']): string =>
      `main heap committed ${mib(p.mainHeapCommitted)} (used ${mib(p.mainHeapUsed)}), ${p.workers} workers' heaps committed ${mib(p.workerHeapsCommitted)} (used ${mib(p.workerHeapsUsed)}), external ${mib(p.external)}, rest of anonymous RSS (malloc, stacks) ${mib(p.rest)}, file-backed ${mib(p.rssFile)}`;
    console.log(`    rise by part: ${parts(m.riseParts)}`);
    console.log(`    after ${m.idle.seconds} s idle, ${fmt(m.idle.count)} records still held: +${fmt(m.idle.deltaRss / 1024 ** 2, 1)} MiB; ${parts(m.idle.riseParts)}`);
  }
  const l = results.mllp;
  if (l) {
    console.log(
      `\n(7) HL7 v2, 4 KiB: intake MLLP ${fmt(l.intakeMllp.perSecond)} msg/s vs HTTP ${fmt(l.intakeHttp.perSecond)} msg/s (${l.intakeMllp.connections} connections/clients; ` +
        `the interface's state-table calls per message ${fmt(l.intakeMllp.stateCallsPerMessage, 2)} vs ${fmt(l.intakeHttp.stateCallsPerMessage, 2)}); ` +
        `EMR delivery MLLP ${fmt(l.deliveryMllp.perSecond)} msg/s (1 connection, 1 in flight) vs HTTP ${fmt(l.deliveryHttp.perSecond)} msg/s`,
    );
  }
  if (results.cpu) console.log(`\n${reportCpu(results.cpu).join('\n')}`);
  if (results.cpuFloor) {
    const f = results.cpuFloor;
    console.log(`    the machinery's lower bound in this design, 4 KiB (bench/machineryFloor.ts in a child process, ${f.rounds} rounds; the pieces each service must do, made the leanest way, against its crypto; docs/benchmarks.md, "The least machinery the design allows"):`);
    console.log(reportMachineryFloor(f, false).map((line) => `  ${line}`).join('\n'));
    const fourKiB = results.cpu?.find((r) => r.size === 4096);
    const machineryUs = (s: ServiceCpu): number => s.total - (s.measured?.crypto ?? s.crypto);
    if (fourKiB) console.log(`      the machinery measured above / its lower bound: interface ${fmt(machineryUs(fourKiB.interface) / f.interface.leanest, 2)} ×, app ${fmt(machineryUs(fourKiB.app) / f.app.leanest, 2)} ×`);
  }
  if (results.store) console.log(`\n${storeLines(results.store).join('\n')}`);
  if (results.large) printLarge(results.large);
  console.log('\nTargets:');
  for (const t of targets) console.log(`  ${t.met === undefined ? '-' : t.met ? 'met   ' : 'MISSED'}  ${t.name}: ${fmt(t.value, 2)} (goal ${t.atMost ? '≤' : '≥'} ${fmt(t.goal, t.goal < 1 ? 2 : t.goal < 100 ? 1 : 0)})`);
  console.log(`\n${round(seconds, 0)} s; load average ${machine.loadAverageAtStart} at start, ${loadAverageAtEnd} at end`);

  const report = { startedAt: startedAt.toISOString(), seconds: round(seconds, 1), quick, loadAverageAtEnd, cryptoWorkers: workersArg ?? `default (${servicesWorkers})`, machine, budgets, concurrency: { crypto: CRYPTO_CONCURRENCY, sqs: SQS_CONCURRENCY, e2eClients: E2E_CLIENTS }, results, ratios, targets };
  const dir = new URL('./results/', import.meta.url);
  await mkdir(dir, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  await writeFile(new URL(`${stamp}.json`, dir), json);
  await writeFile(new URL('latest.json', dir), json);
  console.log(`results: bench/results/${stamp}.json and bench/results/latest.json`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
