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

/** A free TCP port on loopback (bound and released). */
export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
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
