import { spawn, type ChildProcess } from 'node:child_process';
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
 * Ports the tests hand to child processes come from below Linux's default ephemeral range (32768–60999): a port
 * picked with `listen(0)` and released sits in that range, where an outbound connection of a test running beside it
 * may take it as its local port before the child binds it (seen in CI as EADDRINUSE). Each vitest worker
 * (`VITEST_POOL_ID`, 1 to maxWorkers; unset outside vitest) has its own block of 20000–31999, so two workers never
 * pick the same port; within a block the start is random, because the files one worker runs in turn each count afresh.
 */
const PORT_BLOCK_SIZE = 1_500;
const PORT_BLOCKS = 8;
const workerSlot = ((Number(process.env.VITEST_POOL_ID) || 1) - 1) % PORT_BLOCKS;
const block = 20_000 + workerSlot * PORT_BLOCK_SIZE;
let nextOffset = Math.floor(Math.random() * PORT_BLOCK_SIZE);

/** Whether `port` can be listened on, on every interface (a child may bind 0.0.0.0), right now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => done(true)));
  });
}

/** A free TCP port for a child process to listen on: this worker's block, below the ephemeral range, checked free. */
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
