// Opt-in trace inside a service child (bench/serviceChild.ts) for (5b), a measuring tool only:
// a timestamp per envelope at each step of its path in that process (the monotonic clock, shared
// by the processes of the machine), taken by wrapping the service's own objects (crypto, state
// table, SQS client middleware, the inbox), plus the process's GC pauses, its event-loop stalls
// and the crypto calls that are not a submission's own (the interface's receipt opens). The
// parent asks for it at the end (`trace` over IPC) and lines it up with the client's times.
import { PerformanceObserver } from 'node:perf_hooks';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Envelope } from '../services/core/envelope/envelope.ts';
import type { RelayCrypto } from '../services/core/relay/crypto.ts';
import type { StateTable } from '../services/core/state/table.ts';

/** Step name → time (monotonic ms), per envelope id. */
export type TraceMarks = [id: string, steps: [step: string, atMs: number][]][];

/** What a traced child reports. */
export interface ChildTrace {
  /** Each envelope's steps in this process. */
  marks: TraceMarks;
  /** GC pauses: [start, duration, kind] (monotonic ms). */
  gc: [number, number, number][];
  /** Event-loop stalls over 20 ms seen by a 10 ms timer: [start, length, main-thread CPU ms in it] (CPU near the length: work; far below: waiting for a core). */
  stalls: [number, number, number][];
  /** Crypto calls not tied to a traced submission (the interface's receipt opens): [op, start, end]. */
  other: [string, number, number][];
}

/** Tracing of one service process; `report()` returns (and clears) what was seen. */
export interface ChildTracer {
  /** Records `step` for envelope `id` at `t` (now by default); the first time of a step counts. */
  mark(id: string | undefined, step: string, t?: number): void;
  /** What was traced since the last report. */
  report(): ChildTrace;
}

const idOf = (attributes: Record<string, { StringValue?: string }> | undefined): string | undefined => attributes?.['cr-envelope-id']?.StringValue;

/** Starts tracing a service's runtime objects (`side` prefixes the step names). */
export function traceChild(side: 'iface' | 'app', rt: { sqs: SQSClient; crypto: RelayCrypto; state: StateTable }, clock: () => number): ChildTracer {
  const marks = new Map<string, Map<string, number>>();
  const gc: [number, number, number][] = [];
  const stalls: [number, number, number][] = [];
  const other: [string, number, number][] = [];
  const mark = (id: string | undefined, step: string, t = clock()): void => {
    if (id === undefined) return;
    let m = marks.get(id);
    if (!m) marks.set(id, (m = new Map()));
    if (!m.has(step)) m.set(step, t);
  };
  // performance.now() → the monotonic clock of every process.
  const offset = clock() - performance.now();
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gc.push([e.startTime + offset, e.duration, ((e as { detail?: { kind?: number } }).detail?.kind ?? 0)]);
  });
  observer.observe({ entryTypes: ['gc'] });
  const threadCpuMs = (): number => {
    const u = process.threadCpuUsage();
    return (u.user + u.system) / 1000;
  };
  let last = clock();
  let lastCpu = threadCpuMs();
  const timer = setInterval(() => {
    const t = clock();
    const cpu = threadCpuMs();
    if (t - last > 20) stalls.push([last, t - last, cpu - lastCpu]);
    last = t;
    lastCpu = cpu;
  }, 10);
  timer.unref();

  rt.sqs.middlewareStack.add(
    (next, context) => async (args) => {
      const op = context.commandName;
      const input = args.input as { Entries?: { MessageAttributes?: Record<string, { StringValue?: string }> }[] };
      const t = clock();
      if (op === 'SendMessageBatchCommand') for (const e of input.Entries ?? []) mark(idOf(e.MessageAttributes), `${side}.sqsSend.start`, t);
      const out = await next(args);
      const t2 = clock();
      if (op === 'SendMessageBatchCommand') for (const e of input.Entries ?? []) mark(idOf(e.MessageAttributes), `${side}.sqsSend.end`, t2);
      if (op === 'ReceiveMessageCommand') for (const m of (out.output as { Messages?: { MessageAttributes?: Record<string, { StringValue?: string }> }[] }).Messages ?? []) mark(idOf(m.MessageAttributes), `${side}.received`, t2);
      return out;
    },
    { step: 'initialize', name: `trace-${side}` },
  );
  const crypto = rt.crypto as unknown as Record<'seal' | 'open', (...a: unknown[]) => Promise<unknown>>;
  const seal = crypto.seal.bind(rt.crypto);
  crypto.seal = async (...args) => {
    const id = (args[0] as Envelope).id;
    mark(id, `${side}.seal.start`);
    const r = await seal(...args);
    mark(id, `${side}.seal.end`);
    return r;
  };
  const open = crypto.open.bind(rt.crypto);
  crypto.open = async (...args) => {
    const t = clock();
    const r = (await open(...args)) as Envelope;
    if (side === 'app') {
      mark(r.id, 'app.open.start', t);
      mark(r.id, 'app.open.end');
    } else other.push([`${side}.open.${r.kind}`, t, clock()]);
    return r;
  };
  const state = rt.state as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const method of ['update', 'put', 'get', 'delete'] as const) {
    const original = state[method]!.bind(rt.state);
    state[method] = async (...args) => {
      const pk = typeof args[0] === 'string' ? args[0] : String((args[0] as { pk?: string } | undefined)?.pk ?? '');
      const hash = pk.indexOf('#');
      const id = hash >= 0 ? pk.slice(hash + 1) : undefined;
      const t = clock();
      const r = await original(...args);
      if (id !== undefined) {
        const n = [...(marks.get(id)?.keys() ?? [])].filter((k) => k.includes('.state.') && k.endsWith('.start')).length;
        const step = `${side}.state.${pk.slice(0, hash)}.${method}.${n}`;
        mark(id, `${step}.start`, t);
        mark(id, `${step}.end`);
      } else other.push([`${side}.state.${method}`, t, clock()]);
      return r;
    };
  }
  const putMany = state.putMany!.bind(rt.state);
  state.putMany = async (...args) => {
    const t = clock();
    const r = await putMany(...args);
    other.push([`${side}.state.putMany`, t, clock()]);
    return r;
  };
  return {
    mark,
    report() {
      const out: ChildTrace = { marks: [...marks].map(([id, m]) => [id, [...m]]), gc: gc.splice(0), stalls: stalls.splice(0), other: other.splice(0) };
      marks.clear();
      return out;
    },
  };
}
