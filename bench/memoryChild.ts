// The app service alone in its own process (run with --expose-gc) for the memory figure:
// it reports its resident memory at rest and with N records held, over IPC.
import { writeHeapSnapshot } from 'node:v8';
import { loadAppConfig } from '../services/app/config.ts';
import { startAppService } from '../services/app/service.ts';
import { createLogger } from '../services/core/log/logger.ts';
import { nullDestination, sleep } from './lib.ts';
import { memoryParts, type MemoryParts } from './memoryParts.ts';

/** What the parent sends: the app's environment (with the passphrase: IPC, never argv) and the record count. */
export interface MemoryChildStart {
  /** The app service's environment. */
  env: Record<string, string>;
  /** Records to wait for before measuring. */
  records: number;
  /** Records held and acknowledged first, to warm the process up before the baseline. */
  warmup: number;
  /** After the first reading with the records held, how long the process stays idle (records still held) before the second, ms. */
  idleMs: number;
}

/** What the child reports. */
export type MemoryChildMessage =
  | { type: 'ready'; baselineRss: number; baselineHeap: number; parts: MemoryParts }
  | { type: 'held'; count: number; rss: number; heapUsed: number; external: number; arrayBuffers: number; secondsToFill: number; parts: MemoryParts }
  | { type: 'idle'; count: number; rss: number; parts: MemoryParts }
  | { type: 'error'; message: string };

function settle(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) gc?.();
  return process.memoryUsage();
}

async function main(start: MemoryChildStart): Promise<void> {
  for (const [k, v] of Object.entries(start.env)) if (k.startsWith('AWS_')) process.env[k] = v;
  const app = await startAppService(loadAppConfig(start.env), { logger: createLogger({ service: 'app', level: 'info', destination: nullDestination() }), listen: false });
  const ackAll = (): void => {
    for (;;) {
      const page = app.inbox.list(1000);
      if (page.length === 0) return;
      for (const r of page) app.inbox.ack(r.id);
    }
  };
  // Warm-up: the parent sends `warmup` records first; hold and ack them before the baseline.
  let acked = 0;
  while (acked < start.warmup) {
    const page = app.inbox.list(1000);
    for (const r of page) if (app.inbox.ack(r.id)) acked++;
    await sleep(20);
  }
  await sleep(500);
  ackAll();
  const base = settle();
  if (process.env.BENCH_HEAP_SNAPSHOT) writeHeapSnapshot(`${process.env.BENCH_HEAP_SNAPSHOT}/rest.heapsnapshot`);
  process.send!({ type: 'ready', baselineRss: base.rss, baselineHeap: base.heapUsed, parts: memoryParts() } satisfies MemoryChildMessage);
  const t0 = performance.now();
  // A loaded machine fills 10,000 records slowly: a short deadline would measure records half-way through the pipeline.
  const deadline = Date.now() + 300_000;
  while (app.inbox.size < start.records && Date.now() < deadline) await sleep(50);
  const filled = (performance.now() - t0) / 1000;
  await sleep(300);
  const m = settle();
  // BENCH_HEAP_SNAPSHOT=DIR: a heap snapshot with the records held, to see what each one costs.
  if (process.env.BENCH_HEAP_SNAPSHOT) writeHeapSnapshot(`${process.env.BENCH_HEAP_SNAPSHOT}/held-${app.inbox.size}.heapsnapshot`);
  process.send!({ type: 'held', count: app.inbox.size, rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, secondsToFill: filled, parts: memoryParts() } satisfies MemoryChildMessage);
  // The same records still held, after the process has been idle a while (what it settles to).
  await sleep(start.idleMs);
  const idle = settle();
  process.send!({ type: 'idle', count: app.inbox.size, rss: idle.rss, parts: memoryParts() } satisfies MemoryChildMessage);
  ackAll();
  await app.stop();
  process.disconnect();
}

process.once('message', (start: MemoryChildStart) => {
  main(start).catch((err: unknown) => {
    process.send?.({ type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies MemoryChildMessage);
    process.exitCode = 1;
    process.disconnect();
  });
});
