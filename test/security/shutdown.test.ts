import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runNode, waitReady, type RunningProcess } from '../helpers/processes.ts';
import type { TestStack } from '../helpers/stack.ts';
import { trickle } from '../helpers/trickle.ts';
import { waitFor } from '../helpers/wait.ts';
import { startSecurityStack } from './helpers.ts';

let stack: TestStack;
let proc: RunningProcess | undefined;

beforeAll(async () => {
  stack = await startSecurityStack();
});
afterAll(async () => {
  if (proc && proc.child.exitCode === null) proc.child.kill('SIGKILL');
  await stack?.stop();
});

const DEADLINE_MS = 2_000;
// Generous for a loaded machine, still far below the 30 s a trickling client held before.
const MARGIN_MS = 3_000;

describe('SIGTERM on a real interface process', () => {
  it('a client trickling a body does not hold the process past SHUTDOWN_DEADLINE_MS', { timeout: 90_000 }, async () => {
    const port = await freePort();
    proc = runNode('services/interface/main.ts', [], {
      ...stack.env.iface,
      PORT: String(port),
      AUDIT_FILE: join(stack.dir, 'interface-shutdown-audit.jsonl'),
      SHUTDOWN_DEADLINE_MS: String(DEADLINE_MS),
      // Far longer than the deadline: only the shutdown can cut this client.
      HTTP_REQUEST_TIMEOUT_MS: '120000',
      HTTP_HEADERS_TIMEOUT_MS: '60000',
      CRYPTO_WORKERS: '0',
    });
    const url = `http://127.0.0.1:${port}`;
    await waitReady(url, proc);
    const head = `POST /v1/submissions HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer ${stack.tokens.partner}\r\nContent-Type: application/fhir+json\r\nContent-Length: 100000\r\n\r\n`;
    const slow = trickle(port, head, { giveUpMs: 30_000 });
    // The request reached the route (fastify logged it) before the signal.
    await waitFor(() => proc!.lines.some((l) => l.includes('"url":"/v1/submissions"')), { what: 'the trickling request in progress' });
    const started = Date.now();
    const code = await proc.stop('SIGTERM');
    const took = Date.now() - started;
    expect(code).toBe(0);
    expect(took).toBeLessThan(DEADLINE_MS + MARGIN_MS);
    expect((await slow).elapsedMs).toBeLessThan(30_000);
  });
});
