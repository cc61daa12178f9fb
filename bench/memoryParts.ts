// What a process's resident memory consists of (for (6)): the main V8 heap, the worker
// threads' V8 heaps (from the diagnostic report, which covers every worker), memory V8 knows
// of outside its heaps (Buffers), and the rest of the anonymous memory (malloc arenas of the
// threads, code, stacks). Linux: RssAnon/RssFile from /proc/self/status.
import { readFileSync } from 'node:fs';

/** Bytes by part; `rest` = anonymous RSS not in a V8 heap (malloc arenas, Buffers' backing stores, stacks). */
export interface MemoryParts {
  rss: number;
  /** Anonymous resident memory (heaps, malloc), and file-backed (the node binary, libraries). */
  rssAnon: number;
  rssFile: number;
  /** The main thread's V8 heap: committed and used. */
  mainHeapCommitted: number;
  mainHeapUsed: number;
  /** The worker threads' V8 heaps, summed: committed and used, and how many workers. */
  workers: number;
  workerHeapsCommitted: number;
  workerHeapsUsed: number;
  /** Memory outside the V8 heaps that the isolates account for (Buffers, ArrayBuffers), all threads. */
  external: number;
  /** rssAnon − the V8 heaps' committed memory. */
  rest: number;
}

interface HeapReport {
  javascriptHeap?: { totalCommittedMemory?: number; usedMemory?: number; externalMemory?: number };
  workers?: HeapReport[];
}

function status(field: string): number {
  try {
    return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** This process's memory by part, now. */
export function memoryParts(): MemoryParts {
  const report = process.report.getReport() as HeapReport;
  const main = report.javascriptHeap ?? {};
  const workers = report.workers ?? [];
  const sum = (f: (h: NonNullable<HeapReport['javascriptHeap']>) => number | undefined): number => workers.reduce((n, w) => n + (f(w.javascriptHeap ?? {}) ?? 0), 0);
  const usage = process.memoryUsage();
  const mainHeapCommitted = main.totalCommittedMemory ?? usage.heapTotal;
  const workerHeapsCommitted = sum((h) => h.totalCommittedMemory);
  const rssAnon = status('RssAnon');
  return {
    rss: usage.rss,
    rssAnon,
    rssFile: status('RssFile'),
    mainHeapCommitted,
    mainHeapUsed: main.usedMemory ?? usage.heapUsed,
    workers: workers.length,
    workerHeapsCommitted,
    workerHeapsUsed: sum((h) => h.usedMemory),
    external: (main.externalMemory ?? usage.external) + sum((h) => h.externalMemory),
    rest: rssAnon - mainHeapCommitted - workerHeapsCommitted,
  };
}

/** `b − a`, by part (for the rise with the records held); `workers` stays `b`'s count. */
export function partsDelta(a: MemoryParts, b: MemoryParts): MemoryParts {
  const out = { ...b };
  for (const k of Object.keys(b) as (keyof MemoryParts)[]) if (k !== 'workers') out[k] = b[k] - a[k];
  return out;
}
