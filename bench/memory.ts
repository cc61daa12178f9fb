// (6) App resident memory while N records of 4 KiB are held in the inbox: the app runs alone
// in a child process; the bench seals the messages with the interface's keys and queues them.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { createCryptoPool } from '../services/core/relay/cryptoPool.ts';
import { ensureQueues } from '../services/core/transport/queues.ts';
import { benchInline, submissionEnvelope, type BenchKeys } from './lib.ts';
import type { MemoryChildMessage, MemoryChildStart } from './memoryChild.ts';
import { partsDelta, type MemoryParts } from './memoryParts.ts';
import { commonEnv, writeAppTokens, type BenchSqs } from './stack.ts';
import { serviceEnv, serviceNodeFlags } from './serviceFlags.ts';

/** The memory figure. */
export interface MemoryResult {
  /** Records held when measured. */
  records: number;
  /** Payload bytes per record. */
  size: number;
  /** records × size. */
  payloadBytes: number;
  /** RSS at rest (after gc), bytes. */
  baselineRss: number;
  /** RSS with the records held (after gc), bytes. */
  heldRss: number;
  /** heldRss - baselineRss. */
  deltaRss: number;
  /** V8 heap used with the records held. */
  heapUsed: number;
  /** V8 heap used at rest (after gc), bytes: heapUsed - baselineHeapUsed is what the held records cost on the main heap. */
  baselineHeapUsed: number;
  /** Memory outside the V8 heap that V8 knows of (Buffers, ArrayBuffers) with the records held, bytes. */
  external: number;
  /** Budget: 2.5 × payload + 100 MiB. */
  budgetBytes: number;
  /** Seconds the app took to open and hold them all. */
  secondsToFill: number;
  /** The rise by part (main heap, workers' heaps, the rest: malloc arenas, Buffers), with the records held. */
  riseParts: MemoryParts;
  /** The same records still held after `idleSeconds` of idle: the RSS rise and its parts. */
  idle: { seconds: number; count: number; deltaRss: number; riseParts: MemoryParts };
}

/** Seconds the app stays idle, records held, before the second reading. */
export const MEMORY_IDLE_SECONDS = 30;

const MiB = 1024 * 1024;

/** Runs the memory measurement with `records` records of `size` bytes. */
export async function benchMemory(sqs: BenchSqs, keys: BenchKeys, prefix: string, records: number, size: number, cryptoWorkers?: string): Promise<MemoryResult> {
  const queues = await ensureQueues(sqs.client, { prefix, maxReceiveCount: 5, visibilityTimeoutSeconds: 120, queues: ['interface-to-app', 'app-to-interface'] });
  await sqs.ensureTables(prefix);
  const url = queues['interface-to-app'].url;
  const dir = await mkdtemp(join(tmpdir(), 'crb-mem-'));
  const warmup = 500;
  const sealer = await createCryptoPool({ keysDir: keys.interface.dir, passphrase: keys.passphrase, limits: { self: 'interface', maxSkewMs: 60_000, maxAgeMs: 3_600_000 }, threads: availableParallelism(), inline: benchInline() });
  const send = async (count: number): Promise<void> => {
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < count) {
          const n = Math.min(10, count - next);
          next += n;
          const sealed = await Promise.all(Array.from({ length: n }, () => sealer.seal(submissionEnvelope(size))));
          const res = await sqs.client.send(
            new SendMessageBatchCommand({ QueueUrl: url, Entries: sealed.map((s, i) => ({ Id: `m${i}`, MessageBody: s.body, MessageAttributes: s.attributes })) }),
          );
          if ((res.Failed ?? []).length > 0) throw new Error('SendMessageBatch failed in the memory bench');
        }
      }),
    );
  };
  const tokens = await writeAppTokens(dir);
  const env = {
    ...commonEnv(sqs, prefix, cryptoWorkers),
    KEYS_DIR: keys.app.dir,
    KEY_PASSPHRASE: keys.passphrase,
    AUDIT_FILE: join(dir, 'app-audit.jsonl'),
    HMAC_KEY: randomBytes(32).toString('hex'),
    APP_TOKENS_FILE: tokens.file,
    INBOX_CAPACITY: String(records),
    VISIBILITY_TIMEOUT_SECONDS: '120',
    HEARTBEAT_INTERVAL_SECONDS: '40',
  };
  const child = fork(new URL('./memoryChild.ts', import.meta.url), { execArgv: ['--expose-gc', ...serviceNodeFlags()], env: { ...process.env, ...serviceEnv() }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const messages: MemoryChildMessage[] = [];
  let wake: (() => void) | undefined;
  child.on('message', (m: MemoryChildMessage) => {
    messages.push(m);
    wake?.();
  });
  const next = async (type: MemoryChildMessage['type']): Promise<MemoryChildMessage> => {
    for (;;) {
      const i = messages.findIndex((m) => m.type === type || m.type === 'error');
      if (i >= 0) {
        const m = messages.splice(i, 1)[0]!;
        if (m.type === 'error') throw new Error(`memory child: ${m.message}`);
        return m;
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    child.send({ env, records, warmup, idleMs: MEMORY_IDLE_SECONDS * 1000 } satisfies MemoryChildStart);
    await send(warmup);
    const ready = (await next('ready')) as Extract<MemoryChildMessage, { type: 'ready' }>;
    await send(records);
    const held = (await next('held')) as Extract<MemoryChildMessage, { type: 'held' }>;
    const idle = (await next('idle')) as Extract<MemoryChildMessage, { type: 'idle' }>;
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000).unref())]);
    const payloadBytes = held.count * size;
    return {
      records: held.count,
      size,
      payloadBytes,
      baselineRss: ready.baselineRss,
      heldRss: held.rss,
      deltaRss: held.rss - ready.baselineRss,
      heapUsed: held.heapUsed,
      baselineHeapUsed: ready.baselineHeap,
      external: held.external,
      budgetBytes: 2.5 * payloadBytes + 100 * MiB,
      secondsToFill: held.secondsToFill,
      riseParts: partsDelta(ready.parts, held.parts),
      idle: { seconds: MEMORY_IDLE_SECONDS, count: idle.count, deltaRss: idle.rss - ready.baselineRss, riseParts: partsDelta(ready.parts, idle.parts) },
    };
  } finally {
    if (child.exitCode === null) child.kill();
    await sealer.close();
    await rm(dir, { recursive: true, force: true });
  }
}
