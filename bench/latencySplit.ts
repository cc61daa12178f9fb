// Where the time of (5b)'s tail goes: `node bench/latencySplit.ts [rate] [seconds] [size]`. The
// interface and the app each in its own child process, traced (bench/latencyChildTrace.ts), an
// open loop of HTTP submissions at `rate` per second from this process. Prints each segment of the
// path for the median envelopes and for the slowest 2 %, and what the slow ones overlapped (GC
// pauses, event-loop stalls, receipt opens in the interface). A measuring tool only.
import { Agent } from 'node:http';
import { loadavg } from 'node:os';
import { arrivalBoard } from './arrivals.ts';
import type { ChildTrace } from './latencyChildTrace.ts';
import { fhirPayload, makeBenchKeys, percentile, round, sleep } from './lib.ts';
import { monotonicMs } from './serviceChild.ts';
import { childTrace, startServicePair } from './servicePair.ts';
import { startBenchSqs, submitOnce } from './stack.ts';

/** The path's segments: name, from step, to step (the first of several `to` steps found). */
const SEGMENTS: [string, string, string[]][] = [
  ['HTTP in → seal starts', 'client.submit', ['iface.seal.start']],
  ['seal (crypto pool)', 'iface.seal.start', ['iface.seal.end']],
  ['seal end → SQS send starts', 'iface.seal.end', ['iface.sqsSend.start']],
  ['SQS send (until the interface sees the answer)', 'iface.sqsSend.start', ['iface.sqsSend.end']],
  ['send starts → app receives', 'iface.sqsSend.start', ['app.received']],
  ['receive → open ends', 'app.received', ['app.open.end']],
  ['open end → claim ends', 'app.open.end', ['app.state.apply.update.0.end']],
  ['claim end → visible (audit, hold)', 'app.state.apply.update.0.end', ['app.visible']],
  ['total submit → visible', 'client.submit', ['app.visible']],
  ['(202 after submit)', 'client.submit', ['client.202']],
];

type Marks = Map<string, Map<string, number>>;

const merge = (into: Marks, trace: ChildTrace): void => {
  for (const [id, steps] of trace.marks) {
    const m = into.get(id);
    if (!m) continue;
    for (const [step, t] of steps) if (!m.has(step)) m.set(step, t);
  }
};

const segment = (m: Map<string, number>, from: string, to: string[]): number | undefined => {
  const a = m.get(from);
  const b = to.map((s) => m.get(s)).find((t) => t !== undefined);
  return a === undefined || b === undefined ? undefined : b - a;
};

const overlaps = (a0: number, a1: number, b0: number, b1: number): boolean => a0 < b1 && b0 < a1;

async function main(): Promise<void> {
  const rate = Number(process.argv[2] ?? 15);
  const seconds = Number(process.argv[3] ?? 20);
  const size = Number(process.argv[4] ?? 4096);
  const keys = await makeBenchKeys();
  const sqs = await startBenchSqs();
  const board = arrivalBoard();
  const pair = await startServicePair(sqs, keys, `s${Date.now().toString(36)}-`, process.env.BENCH_CRYPTO_WORKERS, (list) => {
    for (const [id, at] of list) board.arrived(id, at);
  }, true);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const bodies = Array.from({ length: 32 }, () => fhirPayload(size));
  const marks: Marks = new Map();
  const once = async (body: Buffer): Promise<void> => {
    const t0 = monotonicMs();
    const id = await submitOnce(pair.url, pair.token, agent, body);
    const t202 = monotonicMs();
    const at = await board.arrival(id);
    marks.set(id, new Map([['client.submit', t0], ['client.202', t202], ['client.arrival', at]]));
  };
  try {
    for (let i = 0; i < 8; i++) await Promise.all(bodies.slice(0, 8).map((b) => once(b)));
    marks.clear();
    await Promise.all([childTrace(pair.iface), childTrace(pair.app)]);
    const load0 = loadavg()[0]!;
    const start = performance.now();
    const pending: Promise<void>[] = [];
    for (let k = 0; performance.now() - start < seconds * 1000; k++) {
      const wait = start + (k * 1000) / rate - performance.now();
      if (wait > 1) await sleep(wait);
      pending.push(once(bodies[k % bodies.length]!));
    }
    await Promise.all(pending);
    const [it, at] = await Promise.all([childTrace(pair.iface), childTrace(pair.app)]);
    merge(marks, it);
    merge(marks, at);
    report(marks, { iface: it, app: at }, rate, size, [load0, loadavg()[0]!]);
  } finally {
    agent.destroy();
    await pair.stop();
    await sqs.stop();
    await keys.cleanup();
  }
}

function report(marks: Marks, traces: { iface: ChildTrace; app: ChildTrace }, rate: number, size: number, load: [number, number]): void {
  const all = [...marks.values()].filter((m) => m.has('app.visible'));
  const total = (m: Map<string, number>): number => m.get('app.visible')! - m.get('client.submit')!;
  all.sort((a, b) => total(a) - total(b));
  const n = all.length;
  const mid = all.slice(Math.floor(n * 0.45), Math.ceil(n * 0.55));
  const slow = all.slice(Math.floor(n * 0.98));
  const mean = (l: number[]): number => (l.length ? l.reduce((a, b) => a + b, 0) / l.length : NaN);
  console.log(`${n} envelopes at ${rate}/s, ${size} bytes, load ${round(load[0], 1)} → ${round(load[1], 1)}; submit → visible p50 ${round(percentile(all.map(total), 50), 1)} p99 ${round(percentile(all.map(total), 99), 1)} max ${round(total(all.at(-1)!), 1)} ms`);
  console.log(`${'segment (ms)'.padEnd(48)} ${'median 10 %'.padStart(12)} ${'slowest 2 %'.padStart(12)}  slowest 2 % each`);
  for (const [name, from, to] of SEGMENTS) {
    const of = (group: Map<string, number>[]): number[] => group.map((m) => segment(m, from, to)).filter((x): x is number => x !== undefined);
    console.log(`${name.padEnd(48)} ${round(mean(of(mid)), 1).toFixed(1).padStart(12)} ${round(mean(of(slow)), 1).toFixed(1).padStart(12)}  ${slow.map((m) => round(segment(m, from, to) ?? NaN, 0)).join(' ')}`);
  }
  // What the slow ones overlapped, per process, against the median ones.
  for (const side of ['iface', 'app'] as const) {
    const tr = traces[side];
    const from = side === 'iface' ? 'client.submit' : 'iface.sqsSend.end';
    const to = side === 'iface' ? 'app.received' : 'app.visible';
    const share = (group: Map<string, number>[], test: (a: number, b: number) => number): number => mean(group.map((m) => (m.has(from) && m.has(to) ? test(m.get(from)!, m.get(to)!) : 0)));
    const gcMs = (a: number, b: number): number => tr.gc.filter(([s, d]) => overlaps(a, b, s, s + d)).reduce((x, [, d]) => x + d, 0);
    const stallMs = (a: number, b: number): number => tr.stalls.filter(([s, d]) => overlaps(a, b, s, s + d)).reduce((x, [, d]) => x + d, 0);
    const stallCpuMs = (a: number, b: number): number => tr.stalls.filter(([s, d]) => overlaps(a, b, s, s + d)).reduce((x, [, , c]) => x + c, 0);
    const otherN = (a: number, b: number): number => tr.other.filter(([, s, e]) => overlaps(a, b, s, e)).length;
    const kinds = new Map<string, number>();
    for (const [op] of tr.other) kinds.set(op, (kinds.get(op) ?? 0) + 1);
    const gcd = tr.gc.map(([, d]) => d);
    console.log(
      `${side}: GC ${tr.gc.length} pauses (p50 ${round(percentile(gcd, 50), 1)} p99 ${round(percentile(gcd, 99), 1)} max ${round(Math.max(0, ...gcd), 1)} ms, ${round(gcd.reduce((a, b) => a + b, 0), 0)} ms in all); stalls > 20 ms: ${tr.stalls.length} (max ${round(Math.max(0, ...tr.stalls.map(([, d]) => d)), 0)} ms, ${round(tr.stalls.reduce((x, [, d]) => x + d, 0), 0)} ms in all, main-thread CPU in them ${round(tr.stalls.reduce((x, [, , c]) => x + c, 0), 0)} ms); other calls: ${[...kinds].map(([k, v]) => `${k} ${v}`).join(', ')}`,
    );
    console.log(
      `  on its part of the path (${from} → ${to}), median vs slowest 2 %: GC ms ${round(share(mid, gcMs), 1)} vs ${round(share(slow, gcMs), 1)}; stall ms ${round(share(mid, stallMs), 1)} vs ${round(share(slow, stallMs), 1)} (main-thread CPU in them ${round(share(mid, stallCpuMs), 1)} vs ${round(share(slow, stallCpuMs), 1)}); other calls in flight ${round(share(mid, otherN), 1)} vs ${round(share(slow, otherN), 1)}`,
    );
  }
  const steps = new Set<string>();
  for (const m of all) for (const s of m.keys()) steps.add(s);
  console.log(`steps seen: ${[...steps].join(', ')}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
