import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { waitFor } from './wait.ts';

/** A spawned process with its output kept line by line. */
export interface RunningProcess {
  /** The child. */
  child: ChildProcess;
  /** stdout and stderr lines so far. */
  lines: string[];
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<number | string>;
  /** Sends a signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Ports the tests hand to child processes come from outside the system's ephemeral range: a port picked with
 * `listen(0)` and released sits in that range, where an outbound connection of a test running beside it may take it
 * as its local port before the child binds it (seen in CI as EADDRINUSE). The range is read from Linux's
 * `ip_local_port_range` (32768–60999 by default); where it cannot be read, that default is assumed (the BSDs' and
 * macOS's 49152–65535 lies above it). The ports come from the larger of the spans below and above the range (from
 * 10000 up, clear of the usual development servers' ports), in eight blocks of up to 1,500 ports, one per vitest worker
 * (`VITEST_POOL_ID`, 1 to maxWorkers; unset outside vitest), so two workers never pick the same port; within a block
 * the start is random, because the files one worker runs in turn each count afresh.
 */
const PORT_BLOCKS = 8;

/** The system's ephemeral port range, [first, last]. */
export function ephemeralRange(read: () => string = () => readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')): [number, number] {
  try {
    const [first, last] = read().trim().split(/\s+/).map(Number);
    if (Number.isInteger(first) && Number.isInteger(last) && first! >= 1 && first! <= last! && last! <= 65_535) return [first!, last!];
  } catch {
    // Not Linux, or not readable: the default below.
  }
  return [32_768, 60_999];
}

/** This worker's block of ports outside `range`: its first port and its size. */
export function portBlock(range: [number, number], slot: number): { first: number; size: number } {
  const below: [number, number] = [10_000, range[0] - 1];
  const above: [number, number] = [Math.max(10_000, range[1] + 1), 65_535];
  const span = (s: [number, number]): number => Math.max(0, s[1] - s[0] + 1);
  const useBelow = span(below) >= span(above);
  const size = Math.min(1_500, Math.floor(span(useBelow ? below : above) / PORT_BLOCKS));
  if (size < 16) throw new Error(`the ephemeral port range ${range[0]}-${range[1]} leaves too few ports outside it for the tests' child processes`);
  // The blocks sit next to the ephemeral range: ending just below it, or starting just above it (from 10000 up).
  const first = useBelow ? range[0] - PORT_BLOCKS * size : above[0];
  return { first: first + slot * size, size };
}

const { first: block, size: PORT_BLOCK_SIZE } = portBlock(ephemeralRange(), ((Number(process.env.VITEST_POOL_ID) || 1) - 1) % PORT_BLOCKS);
let nextOffset = Math.floor(Math.random() * PORT_BLOCK_SIZE);

/** Whether `port` can be listened on, on every interface (a child may bind 0.0.0.0), right now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => done(true)));
  });
}

/** A free TCP port for a child process to listen on: this worker's block, outside the ephemeral range, checked free. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < PORT_BLOCK_SIZE; tries++) {
    const port = block + (nextOffset++ % PORT_BLOCK_SIZE);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${block}-${block + PORT_BLOCK_SIZE - 1}`);
}

/** Node's compile cache for the services the tests start, in the checkout's ignored data folder. */
const TEST_COMPILE_CACHE = resolve('.data', 'test-compile-cache');

/** Runs `node <script> ...args` from the repository root with exactly `env` (plus PATH and HOME). */
export function runNode(script: string, args: string[], env: Record<string, string>, options: { detached?: boolean } = {}): RunningProcess {
  const child = spawn(process.execPath, [resolve(script), ...args], {
    // A compile cache (a restarted service compiles nothing again), unless the test names one.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_COMPILE_CACHE: TEST_COMPILE_CACHE, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, as a command started from a terminal (see `process.kill(-pid)`).
    ...(options.detached ? { detached: true } : {}),
  });
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream.on('data', (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        lines.push(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
    });
  }
  const exited = new Promise<number | string>((done) => child.once('exit', (code, signal) => done(code ?? signal ?? -1)));
  return {
    child,
    lines,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Waits until `url` + /readyz answers 200, failing early with the output if the process died. */
export async function waitReady(url: string, proc: RunningProcess, timeoutMs = 90_000): Promise<void> {
  await waitFor(
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`process exited (${proc.child.exitCode}):\n${proc.lines.slice(-20).join('\n')}`);
      const res = await fetch(`${url}/readyz`).catch(() => undefined);
      return res?.ok;
    },
    { timeoutMs, intervalMs: 100, what: `${url} ready` },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n--- output ---\n${proc.lines.slice(-30).join('\n')}`);
  });
}
