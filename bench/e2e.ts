// (5) End to end: partner intake over HTTP (a real socket) → interface seals → SQS → app
// opens → record held in the inbox; the bench acknowledges each record once it is visible.
import { Agent, request } from 'node:http';
import type { Envelope } from '../services/core/envelope/envelope.ts';
import { fhirPayload, percentile, round, sleep, timed, warmUp, type Throughput } from './lib.ts';
import { countSqsCalls, type SqsCallCounter } from '../test/helpers/sqsCalls.ts';
import type { BenchStack } from './stack.ts';
import { arrivalBoard, type ArrivalBoard } from './arrivals.ts';

/** End-to-end figures for one payload size. */
export interface E2eResult {
  /** Payload bytes. */
  size: number;
  /** Submissions of this size sent before the closed loop (to the JIT's steady state). */
  warmup: number;
  /** Closed loop: `clients` clients, each submit → visible in the inbox → ack, as fast as it goes. */
  max: Throughput & { clients: number };
  /** SQS calls both services made per message in the closed loop, by operation (ReceiveMessage includes empty long polls). */
  sqsCallsPerMessage: Record<string, number>;
  /** Open loop at half the maximum rate: submit → visible in the inbox, ms. */
  halfRate: { targetPerSecond: number; sent: number; completed: number; skipped: number; p50Ms: number; p95Ms: number; p99Ms: number; maxMs: number };
  /** Event-loop utilisation (0–1) of this process (both services, the emulators, the clients) during the open loop. */
  loopUtilisation: number;
}

/** Concurrent clients of the closed loop (bounded, like a partner's connection pool). */
export const E2E_CLIENTS = 32;
/** Most submissions outstanding in the open loop; beyond it a tick is skipped and counted. */
export const OPEN_LOOP_CAP = 256;

/** What an open loop measured: latencies at a fixed rate, ms. */
export type OpenLoopResult = E2eResult['halfRate'];

/** Starts `once(k)` every 1/`target` s for `durationMs` (at most `OPEN_LOOP_CAP` outstanding; beyond, a tick is skipped and counted); `once` resolves with its latency, ms. */
export async function openLoop(target: number, durationMs: number, once: (k: number) => Promise<number>): Promise<OpenLoopResult> {
  const latencies: number[] = [];
  let sent = 0;
  let skipped = 0;
  let outstanding = 0;
  const pending: Promise<void>[] = [];
  const start = performance.now();
  const interval = 1000 / target;
  for (let k = 0; performance.now() - start < durationMs; k++) {
    const due = start + k * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    else await new Promise<void>((resolve) => setImmediate(resolve));
    if (outstanding >= OPEN_LOOP_CAP) {
      skipped++;
      continue;
    }
    outstanding++;
    sent++;
    pending.push(
      once(k).then(
        (ms) => {
          latencies.push(ms);
          outstanding--;
        },
        () => {
          outstanding--;
        },
      ),
    );
  }
  await Promise.all(pending);
  return { targetPerSecond: target, sent, completed: latencies.length, skipped, p50Ms: percentile(latencies, 50), p95Ms: percentile(latencies, 95), p99Ms: percentile(latencies, 99), maxMs: percentile(latencies, 100) };
}

/** Counts the SQS calls of both services' clients by operation, until `stop()`. */
function countStackSqsCalls(stack: BenchStack): SqsCallCounter {
  return countSqsCalls([stack.iface.runtime.sqs, stack.app.runtime.sqs]);
}

/** Watches the app inbox: when each envelope id became visible. */
function watchInbox(stack: BenchStack): Pick<ArrivalBoard, 'arrival' | 'forget'> {
  const board = arrivalBoard();
  const inbox = stack.app.inbox;
  const hold = inbox.hold.bind(inbox);
  inbox.hold = (envelope: Envelope, signal: AbortSignal, now?: Date) => {
    const outcome = hold(envelope, signal, now);
    board.arrived(envelope.id, performance.now());
    return outcome;
  };
  return board;
}

function submit(stack: BenchStack, agent: Agent, body: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${stack.url}/v1/submissions`,
      { method: 'POST', agent, headers: { authorization: `Bearer ${stack.partnerToken}`, 'content-type': 'application/fhir+json', 'content-length': body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 202) return reject(new Error(`intake answered ${res.statusCode}`));
          resolve((JSON.parse(text) as { id: string }).id);
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Measures the sustained maximum and the latency at half of it, for each size. */
export async function benchE2e(
  stack: BenchStack,
  sizes: readonly number[],
  budget: { maxDurationMs: number; latencyDurationMs: number; maxOps: number; warmup: number; latencyRates?: ReadonlyMap<number, number> },
): Promise<E2eResult[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: OPEN_LOOP_CAP });
  const watch = watchInbox(stack);
  const calls = countStackSqsCalls(stack);
  const inbox = stack.app.inbox;
  const once = async (body: Buffer): Promise<{ latencyMs: number }> => {
    const t0 = performance.now();
    const id = await submit(stack, agent, body);
    const t1 = await watch.arrival(id);
    inbox.ack(id);
    return { latencyMs: t1 - t0 };
  };
  const results: E2eResult[] = [];
  try {
    for (const size of sizes) {
      const bodies = Array.from({ length: 64 }, () => fhirPayload(size));
      // The services at steady state first (the JIT's tiers), then the sustained rate.
      const warmed = await warmUp(budget.warmup, E2E_CLIENTS, (i) => once(bodies[i % bodies.length]!));
      const max = await timed(
        { durationMs: budget.maxDurationMs, maxOps: budget.maxOps, concurrency: E2E_CLIENTS, warmup: 0, onStart: () => calls.reset() },
        (i) => once(bodies[i % bodies.length]!),
      );
      const sqsCallsPerMessage = Object.fromEntries([...calls.counts].sort().map(([op, n]) => [op, round(n / Math.max(1, max.ops), 2)]));
      // Half the maximum, unless a fixed rate is asked for (to compare two builds at the same load).
      const target = budget.latencyRates?.get(size) ?? max.perSecond / 2;
      const loop0 = performance.eventLoopUtilization();
      const halfRate = await openLoop(target, budget.latencyDurationMs, (k) => once(bodies[k % bodies.length]!).then((r) => r.latencyMs));
      const loopUtilisation = round(performance.eventLoopUtilization(loop0).utilization, 3);
      results.push({ size, warmup: warmed, max: { ...max, clients: E2E_CLIENTS }, sqsCallsPerMessage, halfRate, loopUtilisation });
    }
    return results;
  } finally {
    calls.stop();
    agent.destroy();
  }
}
