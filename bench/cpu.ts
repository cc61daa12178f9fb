// (8) CPU per message, per service process: each service alone in its own child process
// (bench/servicePair.ts), partner HTTP intake driven from this process, the app acknowledging
// every record once held. Each child's CPU is split by thread: crypto (workers and libuv's
// pool) vs the machinery (main thread: HTTP, SQS, audit, bookkeeping; and V8's helpers).
// CPU time per message holds on a busy machine where rates do not.
import { Agent, request } from 'node:http';
import { fhirPayload, round, timed, type BenchKeys } from './lib.ts';
import { drained, sample, startServicePair, type Sample } from './servicePair.ts';
import type { BenchSqs } from './stack.ts';
import { cpuDelta, type ThreadCpu } from './threadCpu.ts';

/** CPU µs per message of one service, by kind of thread. */
export interface ServiceCpu {
  /** Main thread. */
  main: number;
  /** Crypto workers and libuv's pool. */
  crypto: number;
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
  /** The interface (intake, seal, send). */
  interface: ServiceCpu;
  /** The app (receive, open, hold, acknowledge). */
  app: ServiceCpu;
}

/** Concurrent HTTP clients (a moderate load: the figure is per message, not a maximum). */
export const CPU_CLIENTS = 16;

function perMessage(a: Sample, b: Sample, messages: number): ServiceCpu {
  const d = cpuDelta(a.cpu, b.cpu);
  const n = Math.max(1, messages);
  const total = d.main + d.crypto + d.other;
  return {
    main: round(d.main / n, 0),
    crypto: round(d.crypto / n, 0),
    other: round(d.other / n, 0),
    total: round(total / n, 0),
    machineryShare: round(total === 0 ? 0 : (d.main + d.other) / total, 3),
    source: d.source,
    storeCallsPerMessage: round((b.storeCalls - a.storeCalls) / n, 2),
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

/** Runs (8) for each size: both services in their own processes, `CPU_CLIENTS` clients. */
export async function benchCpu(sqs: BenchSqs, keys: BenchKeys, prefix: string, sizes: readonly number[], budget: { durationMs: number; maxOps: number }, cryptoWorkers?: string): Promise<CpuResult[]> {
  const pair = await startServicePair(sqs, keys, prefix, cryptoWorkers);
  const { iface, app, url, token } = pair;
  const agent = new Agent({ keepAlive: true, maxSockets: CPU_CLIENTS });
  try {
    const results: CpuResult[] = [];
    let sent = 0;
    for (const size of sizes) {
      const bodies = Array.from({ length: 32 }, () => fhirPayload(size));
      // Warm-up (JIT, pools, connections), drained before the first sample.
      const warm = CPU_CLIENTS * 8;
      await timed({ durationMs: 60_000, maxOps: warm, concurrency: CPU_CLIENTS, warmup: 0 }, (i) => submit(url, token, agent, bodies[i % bodies.length]!));
      sent += warm;
      await drained(app, sent, 30_000);
      const [i0, a0] = await Promise.all([sample(iface), sample(app)]);
      const t0 = performance.now();
      const run = await timed({ ...budget, concurrency: CPU_CLIENTS, warmup: 0 }, (i) => submit(url, token, agent, bodies[i % bodies.length]!));
      sent += run.ops;
      const a1 = await drained(app, sent, 30_000);
      const seconds = (performance.now() - t0) / 1000;
      const i1 = await sample(iface);
      const messages = a1.held - a0.held;
      results.push({ size, messages, perSecond: round(messages / seconds, 0), clients: CPU_CLIENTS, interface: perMessage(i0, i1, run.ops), app: perMessage(a0, a1, messages) });
    }
    return results;
  } finally {
    agent.destroy();
    await pair.stop();
  }
}

/** The lines (8) prints: per service and size, CPU µs per message by kind and the machinery's share. */
export function reportCpu(results: readonly CpuResult[]): string[] {
  const lines = [`(8) CPU µs per message, each service in its own process, ${CPU_CLIENTS} clients (main thread / crypto workers + libuv pool / V8 helpers = total; machinery share = (main + helpers) / total; goal ≤ 20 % at 4 KiB):`];
  for (const r of results) {
    for (const [name, s] of [
      ['interface', r.interface],
      ['app', r.app],
    ] as const) {
      lines.push(`    ${r.size / 1024} KiB ${name.padEnd(9)} ${String(s.main).padStart(6)} / ${String(s.crypto).padStart(6)} / ${String(s.other).padStart(5)} = ${String(s.total).padStart(6)} µs   machinery ${(s.machineryShare * 100).toFixed(1)} %   state-store calls ${s.storeCallsPerMessage}/msg`);
    }
    lines.push(`    ${r.size / 1024} KiB both services: ${r.interface.total + r.app.total} µs per message (${r.messages} messages at ${r.perSecond}/s)`);
  }
  return lines;
}
