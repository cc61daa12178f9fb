// Where the time of (5)'s latency goes: `node bench/latencyTrace.ts [rate] [seconds] [size]`.
// Both services in this process (bench/stack.ts), an open loop of HTTP submissions at `rate`
// per second, and a timestamp per envelope at each step of its path, taken by wrapping the
// services' own objects (crypto, state table, audit trail, SQS clients' middleware). Prints
// the percentiles of each step's share and of the receive long polls. A measuring tool only.
import { Agent } from 'node:http';
import { monitorEventLoopDelay, performance as perf } from 'node:perf_hooks';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Envelope } from '../services/core/envelope/envelope.ts';
import { fhirPayload, makeBenchKeys, percentile, round, sleep } from './lib.ts';
import { startBenchSqs, startBenchStack, submitOnce, type BenchStack } from './stack.ts';

/** Step name → ms since the submit started, per envelope id. */
type Marks = Map<string, Map<string, number>>;

const mark = (marks: Marks, id: string | undefined, step: string, t = performance.now()): void => {
  if (id === undefined) return;
  let m = marks.get(id);
  if (!m) marks.set(id, (m = new Map()));
  if (!m.has(step)) m.set(step, t);
};

/** The envelope id in an SQS entry's attributes. */
const idOf = (attributes: Record<string, { StringValue?: string }> | undefined): string | undefined => attributes?.['cr-envelope-id']?.StringValue;

/** Wraps `obj[name]` (a method) so that `before`/`after` see its arguments and result. */
function wrap<T extends object, K extends keyof T>(obj: T, name: K, around: (args: unknown[], run: () => Promise<unknown>) => Promise<unknown>): void {
  const original = (obj[name] as (...a: unknown[]) => Promise<unknown>).bind(obj);
  (obj as Record<K, unknown>)[name] = (...args: unknown[]) => around(args, () => original(...args));
}

/** Records SQS send and receive times per envelope id on a client; receive polls as [start, end, count]. */
function traceSqs(client: SQSClient, marks: Marks, side: string, polls: [number, number, number][]): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const op = context.commandName;
      const input = args.input as { Entries?: { MessageAttributes?: Record<string, { StringValue?: string }> }[] };
      const t = performance.now();
      if (op === 'SendMessageBatchCommand') for (const e of input.Entries ?? []) mark(marks, idOf(e.MessageAttributes), `${side}.sqsSend.start`, t);
      const out = await next(args);
      const t2 = performance.now();
      if (op === 'SendMessageBatchCommand') for (const e of input.Entries ?? []) mark(marks, idOf(e.MessageAttributes), `${side}.sqsSend.end`, t2);
      if (op === 'ReceiveMessageCommand') {
        const messages = (out.output as { Messages?: { MessageAttributes?: Record<string, { StringValue?: string }> }[] }).Messages ?? [];
        polls.push([t, t2, messages.length]);
        for (const m of messages) mark(marks, idOf(m.MessageAttributes), `${side}.received`, t2);
      }
      return out;
    },
    { step: 'initialize', name: `trace-${side}` },
  );
}

function instrument(stack: BenchStack, marks: Marks): { polls: [number, number, number][] } {
  const polls: [number, number, number][] = [];
  traceSqs(stack.iface.runtime.sqs, marks, 'iface', []);
  traceSqs(stack.app.runtime.sqs, marks, 'app', polls);
  wrap(stack.iface.runtime.crypto, 'seal', async (args, run) => {
    const id = (args[0] as Envelope).id;
    mark(marks, id, 'iface.seal.start');
    const r = await run();
    mark(marks, id, 'iface.seal.end');
    return r;
  });
  wrap(stack.app.runtime.crypto, 'open', async (_args, run) => {
    const t = performance.now();
    const r = (await run()) as Envelope;
    mark(marks, r.id, 'app.open.start', t);
    mark(marks, r.id, 'app.open.end');
    return r;
  });
  for (const [side, rt] of [['iface', stack.iface.runtime], ['app', stack.app.runtime]] as const) {
    // The audit trail is behind a Proxy (alerts/auditWatch.ts) and cannot be wrapped here: its
    // time is the gap between the steps around it (app: open.end → claim; interface: sqsSend.end → 202).
    for (const method of ['update', 'put', 'get'] as const) {
      if (typeof rt.state[method] !== 'function') continue;
      wrap(rt.state, method, async (args, run) => {
        const pk = typeof args[0] === 'string' ? args[0] : String((args[0] as { pk: string }).pk);
        const id = pk.slice(pk.indexOf('#') + 1);
        const n = (marks.get(id)?.size ?? 0).toString().padStart(2, '0');
        const step = `${side}.state.${pk.slice(0, pk.indexOf('#'))}.${method}.${n}`;
        mark(marks, id, `${step}.start`);
        const r = await run();
        mark(marks, id, `${step}.end`);
        return r;
      });
    }
  }
  const inbox = stack.app.inbox;
  const hold = inbox.hold.bind(inbox);
  inbox.hold = (envelope: Envelope, signal: AbortSignal, now?: Date) => {
    mark(marks, envelope.id, 'app.visible');
    return hold(envelope, signal, now);
  };
  return { polls };
}

async function main(): Promise<void> {
  const rate = Number(process.argv[2] ?? 30);
  const seconds = Number(process.argv[3] ?? 10);
  const size = Number(process.argv[4] ?? 4096);
  const keys = await makeBenchKeys();
  const sqs = await startBenchSqs();
  const stack = await startBenchStack(sqs, keys, `t${Date.now().toString(36)}-`, process.env.BENCH_CRYPTO_WORKERS);
  const marks: Marks = new Map();
  const { polls } = instrument(stack, marks);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const bodies = Array.from({ length: 32 }, () => fhirPayload(size));
  const once = async (body: Buffer, measured: boolean): Promise<void> => {
    const t0 = performance.now();
    const id = await submitOnce(stack.url, stack.partnerToken, agent, body);
    mark(marks, id, 'client.submit', t0);
    mark(marks, id, 'client.202');
    for (let deadline = performance.now() + 30_000; !marks.get(id)?.has('app.visible') && performance.now() < deadline; ) await sleep(1);
    stack.app.inbox.ack(id);
    if (!measured) marks.delete(id);
  };
  try {
    // Warm-up: JIT, pools, sockets.
    for (let i = 0; i < 8; i++) await Promise.all(bodies.slice(0, 8).map((b) => once(b, false)));
    marks.clear();
    polls.length = 0;
    const start = performance.now();
    const lag = monitorEventLoopDelay({ resolution: 5 });
    lag.enable();
    const elu0 = perf.eventLoopUtilization();
    const cpu0 = process.cpuUsage();
    const pending: Promise<void>[] = [];
    for (let k = 0; performance.now() - start < seconds * 1000; k++) {
      const wait = start + (k * 1000) / rate - performance.now();
      if (wait > 1) await sleep(wait);
      pending.push(once(bodies[k % bodies.length]!, true));
    }
    await Promise.all(pending);
    lag.disable();
    const cpu = process.cpuUsage(cpu0);
    const elu = perf.eventLoopUtilization(elu0);
    report(marks, polls, rate, size);
    const n = Math.max(1, marks.size);
    console.log(`main thread: event loop utilisation ${round(elu.utilization, 2)}, delay p50 ${round(lag.percentile(50) / 1e6, 1)} ms p99 ${round(lag.percentile(99) / 1e6, 1)} ms; process CPU (all threads) ${Math.round((cpu.user + cpu.system) / n)} µs per message`);
  } finally {
    agent.destroy();
    await stack.stop();
    await sqs.stop();
    await keys.cleanup();
  }
}

function report(marks: Marks, polls: [number, number, number][], rate: number, size: number): void {
  // Every step, as ms since the submit started, in the order of its median.
  const steps = new Map<string, number[]>();
  const total: number[] = [];
  for (const m of marks.values()) {
    const t0 = m.get('client.submit');
    const end = m.get('app.visible');
    if (t0 === undefined || end === undefined) continue;
    total.push(end - t0);
    for (const [step, t] of m) {
      const list = steps.get(step) ?? [];
      list.push(t - t0);
      steps.set(step, list);
    }
  }
  const p = (l: number[], q: number): string => round(percentile(l, q), 1).toFixed(1).padStart(8);
  console.log(`${total.length} envelopes at ${rate}/s, ${size} bytes: ms since the submit started`);
  console.log(`${'step'.padEnd(48)}      p50      p90      p99     n`);
  const ordered = [...steps].sort((a, b) => percentile(a[1], 50) - percentile(b[1], 50));
  for (const [step, l] of ordered) console.log(`${step.padEnd(48)} ${p(l, 50)} ${p(l, 90)} ${p(l, 99)} ${String(l.length).padStart(5)}`);
  const gaps = polls.slice(1).map((q, i) => q[0] - polls[i]![1]);
  const durations = polls.map((q) => q[1] - q[0]);
  console.log(`receive polls: ${polls.length}, messages per poll mean ${round(polls.reduce((a, q) => a + q[2], 0) / Math.max(1, polls.length), 2)}; poll duration p50 ${p(durations, 50)} p99 ${p(durations, 99)}; gap between polls p50 ${p(gaps, 50)} p99 ${p(gaps, 99)}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
