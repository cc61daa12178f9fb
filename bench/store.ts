// (9) The state store (DynamoDB; dynalite in this run): its calls per message, and the
// end-to-end rate with it and without it (an in-memory table with the same conditions), side by
// side. One message: partner intake over HTTP → interface → SQS → app inbox → ack, then the
// `held` and `acknowledged` receipts back to the interface's submission status.
import { Agent } from 'node:http';
import type { Envelope } from '../services/core/envelope/envelope.ts';
import { fhirPayload, round, sleep, timed, type BenchKeys, type Throughput } from './lib.ts';
import { memoryStateTable } from './memoryStateTable.ts';
import { startBenchStack, submitOnce, type BenchSqs, type BenchStack } from './stack.ts';

/** One run of (9). */
export interface StoreRun {
  /** `dynamodb` (the embedded store over its API) or `memory` (no store). */
  store: 'dynamodb' | 'memory';
  /** The closed loop's throughput. */
  rate: Throughput & { clients: number };
  /** Store calls per message, by service, counted until the receipts were applied. */
  callsPerMessage: { interface: number; app: number; total: number };
}

/** Concurrent clients of (9)'s closed loop. */
export const STORE_CLIENTS = 16;

/** Resolves when each envelope id is held in the app's inbox. */
function heldSignal(stack: BenchStack): (id: string) => Promise<void> {
  const arrived = new Set<string>();
  const waiting = new Map<string, () => void>();
  const inbox = stack.app.inbox;
  const hold = inbox.hold.bind(inbox);
  inbox.hold = (envelope: Envelope, signal: AbortSignal, now?: Date) => {
    const outcome = hold(envelope, signal, now);
    const w = waiting.get(envelope.id);
    if (w) {
      waiting.delete(envelope.id);
      w();
    } else arrived.add(envelope.id);
    return outcome;
  };
  return (id) => (arrived.delete(id) ? Promise.resolve() : new Promise((resolve) => waiting.set(id, resolve)));
}

/** Waits until neither table has been called for `quietMs` (the receipts are applied), at most `maxMs`. */
async function settled(stack: BenchStack, quietMs: number, maxMs: number): Promise<void> {
  const calls = (): number => stack.iface.runtime.state.calls + stack.app.runtime.state.calls;
  const end = performance.now() + maxMs;
  let last = calls();
  let quietSince = performance.now();
  while (performance.now() < end && performance.now() - quietSince < quietMs) {
    await sleep(100);
    const now = calls();
    if (now !== last) {
      last = now;
      quietSince = performance.now();
    }
  }
}

async function runOnce(sqs: BenchSqs, keys: BenchKeys, prefix: string, store: StoreRun['store'], budget: { durationMs: number; maxOps: number }, cryptoWorkers?: string): Promise<StoreRun> {
  const stack = await startBenchStack(sqs, keys, prefix, cryptoWorkers, store === 'memory' ? memoryStateTable : undefined);
  const agent = new Agent({ keepAlive: true, maxSockets: STORE_CLIENTS });
  try {
    const held = heldSignal(stack);
    const bodies = Array.from({ length: 32 }, () => fhirPayload(4096));
    const once = async (i: number): Promise<void> => {
      const id = await submitOnce(stack.url, stack.partnerToken, agent, bodies[i % bodies.length]!);
      await held(id);
      stack.app.inbox.ack(id);
    };
    await timed({ durationMs: 0, maxOps: 0, concurrency: STORE_CLIENTS, warmup: STORE_CLIENTS * 2 }, once);
    await settled(stack, 1000, 15_000);
    const before = { iface: stack.iface.runtime.state.calls, app: stack.app.runtime.state.calls };
    const rate = await timed({ durationMs: budget.durationMs, maxOps: budget.maxOps, concurrency: STORE_CLIENTS, warmup: 0 }, (i) => once(i + STORE_CLIENTS * 2));
    await settled(stack, 1000, 30_000);
    const per = (n: number): number => round(n / Math.max(1, rate.ops), 2);
    const iface = per(stack.iface.runtime.state.calls - before.iface);
    const app = per(stack.app.runtime.state.calls - before.app);
    return { store, rate: { ...rate, clients: STORE_CLIENTS }, callsPerMessage: { interface: iface, app, total: round(iface + app, 2) } };
  } finally {
    agent.destroy();
    await stack.stop();
  }
}

/** Runs (9): the same closed loop with the store and without it, each on fresh queues. */
export async function benchStore(sqs: BenchSqs, keys: BenchKeys, prefix: string, budget: { durationMs: number; maxOps: number }, cryptoWorkers?: string): Promise<StoreRun[]> {
  const withStore = await runOnce(sqs, keys, `${prefix}d-`, 'dynamodb', budget, cryptoWorkers);
  const without = await runOnce(sqs, keys, `${prefix}m-`, 'memory', budget, cryptoWorkers);
  return [withStore, without];
}

/** The lines (9) prints. */
export function storeLines(runs: readonly StoreRun[]): string[] {
  const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  const [d, m] = [runs.find((r) => r.store === 'dynamodb'), runs.find((r) => r.store === 'memory')];
  const lines = [`(9) state store, 4 KiB, ${STORE_CLIENTS} clients (intake → inbox → ack → receipts applied):`];
  for (const r of runs) {
    lines.push(
      `    ${r.store === 'dynamodb' ? 'with the store (DynamoDB API, dynalite)' : 'without (in-memory table)       '}: ${fmt(r.rate.perSecond)} msg/s; ` +
        `store calls per message: interface ${fmt(r.callsPerMessage.interface, 2)}, app ${fmt(r.callsPerMessage.app, 2)}, total ${fmt(r.callsPerMessage.total, 2)}`,
    );
  }
  if (d && m && m.rate.perSecond > 0) lines.push(`    ratio with / without: ${fmt(d.rate.perSecond / m.rate.perSecond, 2)}`);
  return lines;
}
