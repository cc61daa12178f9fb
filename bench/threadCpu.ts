// CPU time of this process by kind of thread, read from /proc/self/task (Linux): the main
// thread (the relay machinery), the crypto workers and libuv's pool (where WebCrypto runs
// the curve operations), and the rest (V8's GC and compiler helpers). Elsewhere: main vs rest.
import { readdirSync, readFileSync } from 'node:fs';

/** CPU microseconds (user + system) by kind of thread, since the process started. */
export interface ThreadCpu {
  /** The main thread: HTTP, SQS, audit, bookkeeping, the hand-off to the workers. */
  main: number;
  /** Worker threads (the crypto pool) and libuv's thread pool (WebCrypto jobs; also file syncs). */
  crypto: number;
  /** Everything else: V8 helper threads (GC, compilation), signal and task threads. */
  other: number;
  /** How the split was made: per thread from /proc, or main thread vs the rest of the process. */
  source: 'proc' | 'process';
}

// clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux).
const TICK_US = 10_000;
const CRYPTO_THREADS = new Set(['WorkerThread', 'libuv-worker']);

function fromProc(): ThreadCpu | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return undefined;
  }
  const out: ThreadCpu = { main: 0, crypto: 0, other: 0, source: 'proc' };
  for (const tid of tasks) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const us = (Number(fields[11]) + Number(fields[12])) * TICK_US;
    if (tid === String(process.pid)) out.main += us;
    else if (CRYPTO_THREADS.has(name)) out.crypto += us;
    else out.other += us;
  }
  return out;
}

/** This process's CPU by kind of thread, now. */
export function threadCpu(): ThreadCpu {
  const proc = fromProc();
  if (proc) return proc;
  const all = process.cpuUsage();
  const main = process.threadCpuUsage();
  return { main: main.user + main.system, crypto: all.user + all.system - main.user - main.system, other: 0, source: 'process' };
}

/** `b - a`, by kind. */
export function cpuDelta(a: ThreadCpu, b: ThreadCpu): ThreadCpu {
  return { main: b.main - a.main, crypto: b.crypto - a.crypto, other: b.other - a.other, source: b.source };
}
