// (5b) Tail latency with each service in its own process, as deployed: the interface and the app
// in child processes (bench/servicePair.ts), the SQS emulator, the state store and the HTTP
// clients in this one. Sustained maximum (closed loop, submit → record visible in the inbox),
// then p50/p95/p99 in an open loop at half of it. The event-loop utilisation of this process
// is reported too: a saturated driver measures itself, not the services.
import { Agent } from 'node:http';
import { loadavg } from 'node:os';
import { arrivalBoard } from './arrivals.ts';
import { OPEN_LOOP_CAP, E2E_CLIENTS, openLoop, type OpenLoopResult } from './e2e.ts';
import { fhirPayload, round, timed, warmUp, type BenchKeys, type Throughput } from './lib.ts';
import { monotonicMs } from './serviceChild.ts';
import { loopUtilisation, sample, startServicePair, type Sample } from './servicePair.ts';
import { submitOnce, type BenchSqs } from './stack.ts';
import { cpuDelta } from './threadCpu.ts';

/** Event-loop utilisation (0–1) of each process over the open loop. */
export interface LoopUse {
  /** This process: the HTTP clients, the SQS emulator and the state store. */
  bench: number;
  interface: number;
  app: number;
}

/** (5b) for one payload size. */
export interface LatencyResult {
  /** Payload bytes. */
  size: number;
  /** Submissions of this size sent before the closed loop (to the JIT's steady state). */
  warmup: number;
  /** Closed loop, `clients` clients: submit → visible in the inbox (the app acknowledges each record once held). */
  max: Throughput & { clients: number };
  /** Open loop at half the maximum (or the `--latency-rate` given): submit → visible, ms. */
  halfRate: OpenLoopResult;
  /** Event-loop utilisation during the open loop. */
  loop: LoopUse;
  /**
   * CPU µs per message during the open loop (all threads): each service process, this process (the HTTP clients, and
   * the emulators unless they run in a child process) and the emulators' child process when there is one.
   */
  cpuUsPerMessage: { interface: number; app: number; bench: number; emulators?: number };
  /** Cores the processes above kept busy over the open loop, on average (their CPU time / the loop's wall time). */
  coresBusy: number;
  /** Receipt envelopes the app sealed per message during the open loop (receipts share envelopes when they meet). */
  receiptSealsPerMessage: number;
  /** 1-minute load average before and after this size. */
  load: { start: number; end: number };
}

const cpuUs = (a: Sample, b: Sample): number => {
  const d = cpuDelta(a.cpu, b.cpu);
  return d.main + d.crypto + d.other;
};

/** Runs (5b) for each size. */
export async function benchLatency(
  sqs: BenchSqs,
  keys: BenchKeys,
  prefix: string,
  sizes: readonly number[],
  budget: { maxDurationMs: number; latencyDurationMs: number; maxOps: number; warmup: number; latencyRates?: ReadonlyMap<number, number> },
  cryptoWorkers?: string,
): Promise<LatencyResult[]> {
  const board = arrivalBoard();
  const pair = await startServicePair(sqs, keys, prefix, cryptoWorkers, (list) => {
    for (const [id, at] of list) board.arrived(id, at);
  });
  const agent = new Agent({ keepAlive: true, maxSockets: OPEN_LOOP_CAP });
  const once = async (body: Buffer): Promise<number> => {
    const t0 = monotonicMs();
    const id = await submitOnce(pair.url, pair.token, agent, body);
    return (await board.arrival(id)) - t0;
  };
  const results: LatencyResult[] = [];
  try {
    for (const size of sizes) {
      const loadStart = round(loadavg()[0]!, 2);
      const bodies = Array.from({ length: 64 }, () => fhirPayload(size));
      // The services at steady state first (the JIT's tiers), then the sustained rate.
      const warmed = await warmUp(budget.warmup, E2E_CLIENTS, (i) => once(bodies[i % bodies.length]!));
      const max = await timed({ durationMs: budget.maxDurationMs, maxOps: budget.maxOps, concurrency: E2E_CLIENTS, warmup: 0 }, (i) => once(bodies[i % bodies.length]!));
      const target = budget.latencyRates?.get(size) ?? max.perSecond / 2;
      const [i0, a0] = await Promise.all([sample(pair.iface), sample(pair.app)]);
      const bench0 = performance.eventLoopUtilization();
      const benchCpu0 = process.cpuUsage();
      const wall0 = performance.now();
      const emulatorCpu0 = sqs.emulatorCpuUs();
      const halfRate = await openLoop(target, budget.latencyDurationMs, (k) => once(bodies[k % bodies.length]!));
      const bench = performance.eventLoopUtilization(bench0).utilization;
      const benchCpu = process.cpuUsage(benchCpu0);
      const wallUs = (performance.now() - wall0) * 1000;
      const emulatorCpu1 = sqs.emulatorCpuUs();
      const [i1, a1] = await Promise.all([sample(pair.iface), sample(pair.app)]);
      const n = Math.max(1, halfRate.completed);
      const emulatorUs = emulatorCpu0 !== undefined && emulatorCpu1 !== undefined ? emulatorCpu1 - emulatorCpu0 : undefined;
      const totalUs = cpuUs(i0, i1) + cpuUs(a0, a1) + benchCpu.user + benchCpu.system + (emulatorUs ?? 0);
      results.push({
        size,
        warmup: warmed,
        max: { ...max, clients: E2E_CLIENTS },
        halfRate,
        loop: { bench: round(bench, 3), interface: round(loopUtilisation(i0, i1), 3), app: round(loopUtilisation(a0, a1), 3) },
        cpuUsPerMessage: {
          interface: round(cpuUs(i0, i1) / n, 0),
          app: round(cpuUs(a0, a1) / n, 0),
          bench: round((benchCpu.user + benchCpu.system) / n, 0),
          ...(emulatorUs === undefined ? {} : { emulators: round(emulatorUs / n, 0) }),
        },
        coresBusy: round(totalUs / wallUs, 2),
        receiptSealsPerMessage: round((a1.crypto.sealSmall - a0.crypto.sealSmall) / n, 2),
        load: { start: loadStart, end: round(loadavg()[0]!, 2) },
      });
    }
    return results;
  } finally {
    agent.destroy();
    await pair.stop();
  }
}

/** This process's CPU per message (and the emulators' child's), as (5b) prints it. */
function benchCpuLabel(r: LatencyResult, emulators: 'process' | 'child'): string {
  const c = r.cpuUsPerMessage;
  if (emulators === 'child') return `bench process (clients) ${c.bench}, emulators' process ${c.emulators ?? 'n/a'}`;
  return `bench process (clients and emulators) ${c.bench}`;
}

/** The lines (5b) prints. */
export function reportLatency(results: readonly LatencyResult[], emulators: 'process' | 'child' = 'process'): string[] {
  const where = emulators === 'child' ? 'clients in the bench process, emulators in a child process' : 'clients and emulators in the bench process';
  const lines = [`(5b) tail latency, each service in its own process (${where}), submit → visible in the inbox:`];
  for (const r of results) {
    const h = r.halfRate;
    lines.push(
      `    ${r.size / 1024} KiB: sustained ${round(r.max.perSecond, 0)} msg/s (${r.max.clients} clients, after ${r.warmup} warm-up submissions); at ${round(h.targetPerSecond, 1)} msg/s (${h.completed}/${h.sent} done, ${h.skipped} skipped): ` +
        `p50 / p95 / p99 / max ${round(h.p50Ms, 1)} / ${round(h.p95Ms, 1)} / ${round(h.p99Ms, 1)} / ${round(h.maxMs, 1)} ms; ` +
        `event-loop utilisation bench ${r.loop.bench}, interface ${r.loop.interface}, app ${r.loop.app}; CPU µs/msg interface ${r.cpuUsPerMessage.interface}, app ${r.cpuUsPerMessage.app}, ${benchCpuLabel(r, emulators)}; cores busy ${r.coresBusy}; receipt envelopes sealed by the app ${r.receiptSealsPerMessage}/msg; load ${r.load.start} → ${r.load.end}`,
    );
  }
  return lines;
}
