// (8) CPU per message, per service process: each service alone in its own child process
// (bench/serviceChild.ts), partner HTTP intake driven from this process, the app acknowledging
// every record once held. Each child's CPU is split by thread: crypto (workers and libuv's
// pool) vs the machinery (main thread: HTTP, SQS, audit, bookkeeping; and V8's helpers).
// CPU time per message holds on a busy machine where rates do not.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashToken } from '../services/core/http/auth.ts';
import { ensureQueues } from '../services/core/transport/queues.ts';
import { fhirPayload, round, sleep, timed, type BenchKeys } from './lib.ts';
import type { ServiceChildMessage, ServiceChildStart } from './serviceChild.ts';
import { commonEnv, writeAppTokens, type BenchSqs } from './stack.ts';
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

/** A service child and a way to ask it things. */
interface Child {
  proc: ChildProcess;
  next(type: ServiceChildMessage['type']): Promise<ServiceChildMessage>;
}

function startChild(start: ServiceChildStart): Child {
  const proc = fork(new URL('./serviceChild.ts', import.meta.url), { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const inbox: ServiceChildMessage[] = [];
  let wake: (() => void) | undefined;
  proc.on('message', (m: ServiceChildMessage) => {
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

type Sample = { cpu: ThreadCpu; held: number; storeCalls: number };

async function sample(child: Child): Promise<Sample> {
  child.proc.send({ type: 'cpu' });
  const m = (await child.next('cpu')) as Extract<ServiceChildMessage, { type: 'cpu' }>;
  return { cpu: m.cpu, held: m.held, storeCalls: m.storeCalls };
}

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

/** Waits until the app has held `count` records in all (or the deadline passes). */
async function drained(app: Child, count: number, deadlineMs: number): Promise<Sample> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const s = await sample(app);
    if (s.held >= count || Date.now() > deadline) return s;
    await sleep(20);
  }
}

/** Runs (8) for each size: both services in their own processes, `CPU_CLIENTS` clients. */
export async function benchCpu(sqs: BenchSqs, keys: BenchKeys, prefix: string, sizes: readonly number[], budget: { durationMs: number; maxOps: number }, cryptoWorkers?: string): Promise<CpuResult[]> {
  await ensureQueues(sqs.client, { prefix, maxReceiveCount: 5, visibilityTimeoutSeconds: 60 });
  await sqs.ensureTables(prefix);
  const dir = await mkdtemp(join(tmpdir(), 'crb-cpu-'));
  const token = randomBytes(18).toString('base64url');
  await writeFile(join(dir, 'partners.json'), JSON.stringify({ tokens: [{ name: 'bench-partner', sha256: hashToken(token), rateLimitPerMinute: 100_000 }] }));
  const appTokens = await writeAppTokens(dir);
  const common = { ...commonEnv(sqs, prefix, cryptoWorkers), AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench' };
  const children: Child[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: CPU_CLIENTS });
  try {
    const iface = startChild({
      service: 'interface',
      env: { ...common, KEYS_DIR: keys.interface.dir, KEY_PASSPHRASE: keys.passphrase, AUDIT_FILE: join(dir, 'interface-audit.jsonl'), HMAC_KEY: randomBytes(32).toString('hex'), PARTNERS_FILE: join(dir, 'partners.json'), EMR_URL: 'http://127.0.0.1:9/deliveries' },
    });
    children.push(iface);
    const app = startChild({
      service: 'app',
      env: { ...common, KEYS_DIR: keys.app.dir, KEY_PASSPHRASE: keys.passphrase, AUDIT_FILE: join(dir, 'app-audit.jsonl'), HMAC_KEY: randomBytes(32).toString('hex'), APP_TOKENS_FILE: appTokens.file },
    });
    children.push(app);
    const ready = (await iface.next('ready')) as Extract<ServiceChildMessage, { type: 'ready' }>;
    await app.next('ready');
    const url = `http://127.0.0.1:${ready.port}`;
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
