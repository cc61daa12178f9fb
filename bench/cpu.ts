// (8) CPU per message, per service process: each service alone in its own child process
// (bench/servicePair.ts), partner HTTP intake driven from this process, the app acknowledging
// every record once held. Each child's CPU is split by thread: crypto (workers and libuv's
// pool) vs the machinery (main thread: HTTP, SQS, audit, bookkeeping; and V8's helpers).
// CPU time per message holds on a busy machine where rates do not. With `--cpu-profile` each
// child also samples its main thread over the measured window (V8's profiler, in the child) and
// splits it by part (bench/profileParts.ts): the crypto measured where it runs, not estimated.
import { Agent, request } from 'node:http';
import { buildEnvelope, type Envelope } from '../services/core/envelope/envelope.ts';
import { open } from '../services/core/envelope/open.ts';
import { seal } from '../services/core/envelope/seal.ts';
import { uuidv7 } from '../services/core/envelope/uuidv7.ts';
import { encodeReceipt, RECEIPT_CONTENT_TYPE, RECEIPT_KIND } from '../services/core/receipts/receipt.ts';
import { CRYPTO_WARMUP } from './crypto.ts';
import { fhirPayload, round, submissionEnvelope, timed, warmUp, type BenchKeys } from './lib.ts';
import { PART_LABELS, PARTS, type Part } from './profileParts.ts';
import type { CryptoCalls } from './serviceChild.ts';
import { drained, sample, startProfile, startServicePair, stopProfile, type Child, type Sample } from './servicePair.ts';
import type { BenchSqs } from './stack.ts';
import { cpuDelta, threadCpu, type ThreadCpu } from './threadCpu.ts';

/** CPU µs per message of one service, by kind of thread. */
export interface ServiceCpu {
  /** Main thread. */
  main: number;
  /** Crypto workers and libuv's pool; with in-thread crypto, the estimate below. */
  crypto: number;
  /**
   * With in-thread crypto (no worker pool) the crypto runs on the main thread and threads cannot
   * split it: `crypto` is then the service's seals and opens counted × the CPU per seal and per open
   * measured in this process (16 in flight, same sizes), and `main` the rest of the main thread.
   */
  cryptoEstimated: boolean;
  /** V8 helpers and other threads. */
  other: number;
  /** All threads. */
  total: number;
  /** (main + other) / total: what the relay machinery costs, as a share of the service's CPU. */
  machineryShare: number;
  /** How the split was made (`proc`: per thread). */
  source: ThreadCpu['source'];
  /** Calls to the state store (DynamoDB) per message. */
  storeCallsPerMessage: number;
  /** Receipt envelopes this service sealed per message (two receipts per submission; several can share an envelope). */
  receiptSealsPerMessage: number;
  /**
   * With `--cpu-profile`: the main thread's CPU µs per message split by part, in the shares its
   * sampled busy time had (the profiler's own cost included, spread over the parts).
   */
  parts?: Record<Part, number>;
  /**
   * With `--cpu-profile`: the crypto as measured in the service, µs per message (the main
   * thread's crypto part + the crypto workers and libuv's pool), and the machinery's share with it.
   */
  measured?: { crypto: number; machineryShare: number };
}

/** The figure for one payload size. */
export interface CpuResult {
  /** Payload bytes. */
  size: number;
  /** Messages in the measured window (submitted, held and acknowledged). */
  messages: number;
  /** Messages per second in the window (closed loop, `clients` clients). */
  perSecond: number;
  /** Concurrent HTTP clients. */
  clients: number;
  /** Submissions of this size sent before the window (to the JIT's steady state). */
  warmup: number;
  /** The interface (intake, seal, send). */
  interface: ServiceCpu;
  /** The app (receive, open, hold, acknowledge). */
  app: ServiceCpu;
}

/** Concurrent HTTP clients (a moderate load: the figure is per message, not a maximum). */
export const CPU_CLIENTS = 16;

/** CPU µs per seal and per open, in-thread with 16 in flight, for the payload size and for a receipt. */
interface CryptoCosts {
  seal: number;
  open: number;
  sealSmall: number;
  openSmall: number;
}

function receiptEnvelope(): Envelope {
  const body = encodeReceipt({ ref: uuidv7(), status: 'acknowledged', at: new Date().toISOString() });
  return buildEnvelope({ kind: RECEIPT_KIND, from: 'interface', to: 'app', queue: 'interface-to-app', partner: 'bench-partner', contentType: RECEIPT_CONTENT_TYPE, body });
}

/** Measures in this process what one seal and one open cost at `size` and for a receipt (the services' in-thread path). */
async function calibrate(keys: BenchKeys, size: number): Promise<CryptoCosts> {
  const ctx = { own: keys.app.keys.own, peers: keys.app.keys.peers, self: 'app', queue: 'interface-to-app', maxSkewMs: 60_000, maxAgeMs: 3_600_000 };
  const cost = async (envelope: Envelope): Promise<{ seal: number; open: number }> => {
    const sealed = await seal(envelope, keys.interface.keys.own, keys.interface.keys.peers);
    // The main thread and libuv's pool only, as they are counted in the services (V8's helpers stay apart).
    const perOp = async (op: () => Promise<unknown>): Promise<number> => {
      await warmUp(CRYPTO_WARMUP, 16, op);
      const before = threadCpu();
      const run = await timed({ durationMs: 1500, maxOps: 3000, concurrency: 16, warmup: 0 }, op);
      const d = cpuDelta(before, threadCpu());
      return (d.main + d.crypto) / Math.max(1, run.ops);
    };
    return { seal: await perOp(() => seal(envelope, keys.interface.keys.own, keys.interface.keys.peers)), open: await perOp(() => open(sealed.body, ctx)) };
  };
  const big = await cost(submissionEnvelope(size));
  const small = await cost(receiptEnvelope());
  return { seal: big.seal, open: big.open, sealSmall: small.seal, openSmall: small.open };
}

function perMessage(a: Sample, b: Sample, messages: number, costs: CryptoCosts | undefined, shares?: Record<Part, number>): ServiceCpu {
  const d = cpuDelta(a.cpu, b.cpu);
  const n = Math.max(1, messages);
  const total = d.main + d.crypto + d.other;
  let { main, crypto } = d;
  const estimated = b.crypto.inThread && costs !== undefined;
  if (estimated) {
    const calls = (k: keyof Omit<CryptoCalls, 'inThread'>): number => b.crypto[k] - a.crypto[k];
    const inThread = calls('seal') * costs.seal + calls('open') * costs.open + calls('sealSmall') * costs.sealSmall + calls('openSmall') * costs.openSmall;
    // The libuv pool's time is WebCrypto's, and part of the measured cost per operation.
    crypto = Math.min(d.main + d.crypto, inThread);
    main = d.main + d.crypto - crypto;
  }
  const parts = shares && (Object.fromEntries(PARTS.map((k) => [k, round((shares[k] * d.main) / n, 0)])) as Record<Part, number>);
  const measuredCrypto = shares ? shares.crypto * d.main + d.crypto : 0;
  return {
    ...(parts ? { parts, measured: { crypto: round(measuredCrypto / n, 0), machineryShare: round(total === 0 ? 0 : (total - measuredCrypto) / total, 3) } } : {}),
    main: round(main / n, 0),
    crypto: round(crypto / n, 0),
    cryptoEstimated: estimated,
    other: round(d.other / n, 0),
    total: round(total / n, 0),
    machineryShare: round(total === 0 ? 0 : (total - crypto) / total, 3),
    source: d.source,
    storeCallsPerMessage: round((b.storeCalls - a.storeCalls) / n, 2),
    receiptSealsPerMessage: round((b.crypto.sealSmall - a.crypto.sealSmall) / n, 2),
  };
}

function submit(url: string, token: string, agent: Agent, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/submissions`, { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 202 ? resolve() : reject(new Error(`intake answered ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Runs (8) for each size: both services in their own processes, `clients` clients (`CPU_CLIENTS`
 * unless `--cpu-clients=N`); `profile` (`--cpu-profile`) samples each service's main thread over
 * the measured window and splits it by part.
 */
export async function benchCpu(sqs: BenchSqs, keys: BenchKeys, prefix: string, sizes: readonly number[], budget: { durationMs: number; maxOps: number; warmup: number }, cryptoWorkers?: string, clients = CPU_CLIENTS, profile = false): Promise<CpuResult[]> {
  const pair = await startServicePair(sqs, keys, prefix, cryptoWorkers);
  const { iface, app, url, token } = pair;
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  try {
    const results: CpuResult[] = [];
    let sent = 0;
    for (const size of sizes) {
      const bodies = Array.from({ length: 32 }, () => fhirPayload(size));
      // Warm-up to steady state (the JIT's tiers, pools, connections), drained before the first sample.
      const warmed = await warmUp(budget.warmup, clients, (i) => submit(url, token, agent, bodies[i % bodies.length]!));
      sent += warmed;
      await drained(app, sent, 30_000);
      // In-thread crypto cannot be told apart by thread: what a seal and an open cost is measured here first.
      const costs = (await sample(iface)).crypto.inThread ? await calibrate(keys, size) : undefined;
      if (profile) await Promise.all([startProfile(iface), startProfile(app)]);
      const [i0, a0] = await Promise.all([sample(iface), sample(app)]);
      const t0 = performance.now();
      const run = await timed({ ...budget, concurrency: clients, warmup: 0 }, (i) => submit(url, token, agent, bodies[i % bodies.length]!));
      sent += run.ops;
      const a1 = await drained(app, sent, 30_000);
      const seconds = (performance.now() - t0) / 1000;
      const i1 = await sample(iface);
      const stop = (child: Child): Promise<Record<Part, number> | undefined> => (profile ? stopProfile(child) : Promise.resolve(undefined));
      const [iShares, aShares] = await Promise.all([stop(iface), stop(app)]);
      const messages = a1.held - a0.held;
      results.push({ size, messages, perSecond: round(messages / seconds, 0), clients, warmup: warmed, interface: perMessage(i0, i1, run.ops, costs, iShares), app: perMessage(a0, a1, messages, costs, aShares) });
    }
    return results;
  } finally {
    agent.destroy();
    await pair.stop();
  }
}

/** The lines (8) prints: per service and size, CPU µs per message by kind and the machinery's share. */
export function reportCpu(results: readonly CpuResult[]): string[] {
  const estimated = results.some((r) => r.interface.cryptoEstimated || r.app.cryptoEstimated);
  const lines = [
    `(8) CPU µs per message, each service in its own process, ${results[0]?.clients ?? CPU_CLIENTS} clients, after ${results[0]?.warmup ?? 0} warm-up submissions per size (main thread / crypto / V8 helpers = total; machinery share = (main + helpers) / total; goal ≤ 20 % at 4 KiB):`,
    estimated
      ? '    crypto in-thread (no worker pool): its share estimated as the seals and opens each service made × their CPU measured in this process just before (16 in flight, receipts apart); main = the rest of the main thread and libuv\'s pool'
      : '    crypto = the worker pool + libuv\'s pool, measured per thread',
  ];
  for (const r of results) {
    for (const [name, s] of [
      ['interface', r.interface],
      ['app', r.app],
    ] as const) {
      lines.push(`    ${r.size / 1024} KiB ${name.padEnd(9)} ${String(s.main).padStart(6)} / ${String(s.crypto).padStart(6)} / ${String(s.other).padStart(5)} = ${String(s.total).padStart(6)} µs   machinery ${(s.machineryShare * 100).toFixed(1)} %   state-store calls ${s.storeCallsPerMessage}/msg   receipt envelopes sealed ${s.receiptSealsPerMessage}/msg`);
      if (s.parts && s.measured) {
        const parts = PARTS.map((k) => `${PART_LABELS[k]} ${s.parts![k]}`).join(', ');
        lines.push(`        profiled main thread, µs/msg: ${parts}; crypto measured in the service ${s.measured.crypto} µs (with its libuv pool): machinery ${(s.measured.machineryShare * 100).toFixed(1)} %`);
      }
    }
    lines.push(`    ${r.size / 1024} KiB both services: ${r.interface.total + r.app.total} µs per message (${r.messages} messages at ${r.perSecond}/s)`);
  }
  return lines;
}
