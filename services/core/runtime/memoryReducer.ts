// Lets V8 give memory back when a service goes idle. V8 keeps the heap pages a GC frees in a
// pool for reuse and returns them to the OS only in a memory-reducing GC, which its memory
// reducer starts once the process allocates little. In Node 24 (V8 13.6) that check also needs a
// non-zero allocation rate on the embedder's (cppgc) heap, and a process that never allocates
// there reads as allocating fast forever: the reducer waits, and only its watchdog (100 s
// after the last full GC, postponed by any full GC) runs it. After the app opened 10,000 records,
// up to ~200 MiB of freed pages stayed resident that long. One small cppgc object every few
// seconds (a `vm.Script` is one) keeps that rate low but non-zero, so the reducer runs within
// ~20 s of idle as intended. docs/benchmarks.md (6) gives the figures with and without.
import { Script } from 'node:vm';

/**
 * How often the nudge allocates. The embedder rate it creates decays between allocations and
 * reads 0 again some time after the last one; the reducer checks every 8 s.
 */
export const MEMORY_REDUCER_NUDGE_MS = 10_000;

/** A running nudge; `stop` ends it. */
export interface MemoryReducerNudge {
  stop(): void;
}

/** Starts the nudge that keeps V8's memory reducer able to run when this thread is idle. */
export function startMemoryReducerNudge(intervalMs: number = MEMORY_REDUCER_NUDGE_MS): MemoryReducerNudge {
  // The compiled script is cached by V8; what counts is the cppgc object each `Script` is.
  const nudge = (): void => void new Script('');
  nudge();
  const timer = setInterval(nudge, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
