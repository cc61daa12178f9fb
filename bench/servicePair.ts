// Both services, each alone in its own child process (bench/serviceChild.ts), on the bench's
// emulators: the setup of (8) and (5b). The parent asks each child things over IPC.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildTrace } from './latencyChildTrace.ts';
import type { Part } from './profileParts.ts';
import { sleep, type BenchKeys } from './lib.ts';
import type { Arrival, CryptoCalls, ServiceChildMessage, ServiceChildStart } from './serviceChild.ts';
import { commonEnv, prepareServices, type BenchSqs } from './stack.ts';
import { serviceEnv, serviceNodeFlags } from './serviceFlags.ts';
import type { ThreadCpu } from './threadCpu.ts';

/** A service child and a way to ask it things. */
export interface Child {
  proc: ChildProcess;
  next(type: ServiceChildMessage['type']): Promise<ServiceChildMessage>;
}

/** One reading of a child: its CPU by thread, records held so far, state-store calls, event-loop time. */
export interface Sample {
  cpu: ThreadCpu;
  held: number;
  storeCalls: number;
  /** The child's main thread since it started: idle and active ms (performance.eventLoopUtilization). */
  loop: { idle: number; active: number };
  /** The seals and opens the service made so far, and whether its crypto is in-thread. */
  crypto: CryptoCalls;
}

/** Forks one service child; `onArrivals` receives the app's arrival reports (when asked for in `start`). */
export function startChild(start: ServiceChildStart, onArrivals?: (arrivals: Arrival[]) => void): Child {
  // The child's stdout is the bench's: the services log nowhere there, so what shows is what a V8 flag
  // given in BENCH_SERVICE_NODE_FLAGS prints (`--trace-gc`, say).
  const proc = fork(new URL('./serviceChild.ts', import.meta.url), { execArgv: [...process.execArgv, ...serviceNodeFlags()], env: { ...process.env, ...serviceEnv() }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const inbox: ServiceChildMessage[] = [];
  let wake: (() => void) | undefined;
  proc.on('message', (m: ServiceChildMessage) => {
    if (m.type === 'arrivals') return onArrivals?.(m.arrivals);
    inbox.push(m);
    wake?.();
  });
  // A send to a child that died is reported by the next read, not as an unhandled 'error'.
  proc.on('error', (err) => {
    inbox.push({ type: 'error', message: err.message });
    wake?.();
  });
  proc.once('exit', (code, signal) => {
    inbox.push({ type: 'error', message: `${start.service} child exited (${signal ?? code})` });
    wake?.();
  });
  proc.send(start);
  return {
    proc,
    async next(type) {
      for (;;) {
        const i = inbox.findIndex((m) => m.type === type || m.type === 'error');
        if (i >= 0) {
          const m = inbox.splice(i, 1)[0]!;
          if (m.type === 'error') throw new Error(`${start.service} child: ${m.message}`);
          return m;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

/** Asks a child for its CPU, held count, state-store calls and event-loop time. */
export async function sample(child: Child): Promise<Sample> {
  child.proc.send({ type: 'cpu' });
  const m = (await child.next('cpu')) as Extract<ServiceChildMessage, { type: 'cpu' }>;
  return { cpu: m.cpu, held: m.held, storeCalls: m.storeCalls, loop: m.loop, crypto: m.crypto };
}

/** Starts the V8 sampling profiler on the child's main thread (`--cpu-profile` of (8)). */
export async function startProfile(child: Child): Promise<void> {
  child.proc.send({ type: 'profile-start' });
  await child.next('profile');
}

/** Stops the child's profiler: each part's share of the main thread's busy time sampled since the start (bench/profileParts.ts). */
export async function stopProfile(child: Child): Promise<Record<Part, number>> {
  child.proc.send({ type: 'profile-stop' });
  const m = (await child.next('profile')) as Extract<ServiceChildMessage, { type: 'profile' }>;
  if (!m.parts) throw new Error('the child answered no profile');
  return m.parts;
}

/** Asks a child traced at start for what it traced since the last ask (bench/latencyChildTrace.ts). */
export async function childTrace(child: Child): Promise<ChildTrace> {
  child.proc.send({ type: 'trace' });
  return ((await child.next('trace')) as Extract<ServiceChildMessage, { type: 'trace' }>).trace;
}

/** The child's event-loop utilisation between two samples (0–1). */
export function loopUtilisation(a: Sample, b: Sample): number {
  const active = b.loop.active - a.loop.active;
  const all = active + b.loop.idle - a.loop.idle;
  return all <= 0 ? 0 : active / all;
}

/** Waits until the app has held `count` records in all (or the deadline passes). */
export async function drained(app: Child, count: number, deadlineMs: number): Promise<Sample> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const s = await sample(app);
    if (s.held >= count || Date.now() > deadline) return s;
    await sleep(20);
  }
}

/** Both services running, each in its own process. */
export interface ServicePair {
  iface: Child;
  app: Child;
  /** The interface's base URL. */
  url: string;
  /** The partner's bearer token. */
  token: string;
  /** Stops both children and removes their files. */
  stop(): Promise<void>;
}

/** Starts the interface and the app in their own processes on fresh queues (`prefix`); `onArrivals` asks the app to report each record's arrival. */
export async function startServicePair(sqs: BenchSqs, keys: BenchKeys, prefix: string, cryptoWorkers?: string, onArrivals?: (arrivals: Arrival[]) => void, trace = false): Promise<ServicePair> {
  const { dir, partnerToken: token, appTokens } = await prepareServices(sqs, prefix, 'crb-pair-');
  const common = { ...commonEnv(sqs, prefix, cryptoWorkers), AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench' };
  const children: Child[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map(async (c) => {
        if (c.proc.exitCode !== null || !c.proc.connected) return;
        const exited = new Promise<void>((resolve) => c.proc.once('exit', () => resolve()));
        c.proc.send({ type: 'stop' });
        await Promise.race([exited, sleep(10_000)]);
        if (c.proc.exitCode === null) c.proc.kill();
      }),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const iface = startChild({
      service: 'interface',
      env: { ...common, KEYS_DIR: keys.interface.dir, KEY_PASSPHRASE: keys.passphrase, AUDIT_FILE: join(dir, 'interface-audit.jsonl'), HMAC_KEY: randomBytes(32).toString('hex'), PARTNERS_FILE: join(dir, 'partners.json'), EMR_URL: 'http://127.0.0.1:9/deliveries' },
      trace,
    });
    children.push(iface);
    const app = startChild(
      {
        service: 'app',
        env: { ...common, KEYS_DIR: keys.app.dir, KEY_PASSPHRASE: keys.passphrase, AUDIT_FILE: join(dir, 'app-audit.jsonl'), HMAC_KEY: randomBytes(32).toString('hex'), APP_TOKENS_FILE: appTokens.file },
        reportArrivals: onArrivals !== undefined,
        trace,
      },
      onArrivals,
    );
    children.push(app);
    const ready = (await iface.next('ready')) as Extract<ServiceChildMessage, { type: 'ready' }>;
    await app.next('ready');
    return { iface, app, url: `http://127.0.0.1:${ready.port}`, token, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
