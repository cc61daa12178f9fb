// `npm start` keeps production's promise across a crash of the whole stack: kill -9 of the
// `care-relay dev` process group (emulator, EMR sink, both services) while submissions flow
// and records are held unacknowledged in the inbox, then a restart on the same data folder.
// Every submission answered 202 reaches the inbox again; every held record comes back; an
// acknowledged record does not.
import { connect } from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';
import { fhir } from './harness.ts';

let dir: string;
let ports: Record<'INTERFACE_PORT' | 'APP_PORT' | 'EMR_SINK_PORT' | 'SQS_PORT' | 'MLLP_PORT' | 'EMR_MLLP_SINK_PORT', string>;
let dev: { child: ChildProcess; lines: string[] } | undefined;

/** Starts `care-relay dev` as the leader of its own process group, as a terminal would. */
async function startDev(): Promise<{ child: ChildProcess; lines: string[] }> {
  const child = spawn(process.execPath, [resolve('services/cli/main.ts'), 'dev', '--data', join(dir, 'data'), '--keys', join(dir, 'keys')], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', ...ports },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr]) stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n')));
  await waitFor(() => lines.some((l) => l.includes('Ctrl-C stops everything')) || (child.exitCode !== null && Promise.reject(new Error(lines.join('\n')))), {
    timeoutMs: 90_000,
    what: 'care-relay dev to be ready',
  });
  return { child, lines };
}

/** kill -9 of the whole process group: nothing gets to flush or say goodbye. */
async function killGroup(child: ChildProcess): Promise<void> {
  const exited = new Promise((done) => child.once('exit', done));
  process.kill(-child.pid!, 'SIGKILL');
  await exited;
}

/** True once nothing listens on the port any more (the services exit when their dev stack is gone). */
function portFree(port: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ port: Number(port), host: '127.0.0.1' });
    socket.once('connect', () => (socket.destroy(), done(false)));
    socket.once('error', () => done(true));
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-dev-restart-'));
  ports = { INTERFACE_PORT: String(await freePort()), APP_PORT: String(await freePort()), EMR_SINK_PORT: String(await freePort()), SQS_PORT: String(await freePort()), MLLP_PORT: String(await freePort()), EMR_MLLP_SINK_PORT: String(await freePort()) };
});

afterAll(async () => {
  if (dev && dev.child.exitCode === null && dev.child.signalCode === null) await killGroup(dev.child);
  await rm(dir, { recursive: true, force: true });
});

describe('npm start across kill -9 of the whole stack', () => {
  it('loses no accepted submission and no unacknowledged inbox record', async () => {
    dev = await startDev();
    const tokens = JSON.parse(await readFile(join(dir, 'data', 'secrets.json'), 'utf8')) as { partnerToken: string; readerToken: string };
    const iface = `http://127.0.0.1:${ports.INTERFACE_PORT}`;
    const app = `http://127.0.0.1:${ports.APP_PORT}`;
    const reader = { authorization: `Bearer ${tokens.readerToken}` };
    const accepted = new Set<string>();
    const submit = async (key: string): Promise<void> => {
      const res = await fetch(`${iface}/v1/submissions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.partnerToken}`, 'content-type': 'application/fhir+json' },
        body: fhir(key),
      });
      if (res.status === 202) accepted.add(((await res.json()) as { id: string }).id);
    };
    const listed = async (): Promise<string[]> => {
      const res = await fetch(`${app}/v1/inbox?limit=1000`, { headers: reader });
      return ((await res.json()) as { records: Array<{ id: string }> }).records.map((r) => r.id);
    };

    // Some records reach the inbox; a few are acknowledged, the rest stay held (in flight).
    await Promise.all(Array.from({ length: 20 }, (_, i) => submit(`first-${i}`)));
    expect(accepted.size).toBe(20);
    const held = await waitFor(async () => ((await listed()).length >= 10 ? listed() : undefined), { timeoutMs: 30_000, what: 'records in the inbox' });
    const acked = held.slice(0, 4);
    for (const id of acked) expect((await fetch(`${app}/v1/inbox/${id}/ack`, { method: 'POST', headers: reader })).status).toBe(200);

    // Traffic keeps flowing while the whole stack is killed.
    let flowing = true;
    let n = 0;
    const traffic = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (flowing) await submit(`during-${n++}`).catch(() => undefined);
      }),
    );
    const before = accepted.size;
    await waitFor(() => accepted.size >= before + 15, { timeoutMs: 30_000, what: 'submissions accepted during traffic' });
    const heldAtKill = (await listed()).filter((id) => !acked.includes(id));
    expect(heldAtKill.length, 'unacknowledged records held at the kill').toBeGreaterThan(0);
    await killGroup(dev.child);
    flowing = false;
    await traffic;
    await waitFor(async () => (await portFree(ports.INTERFACE_PORT)) && (await portFree(ports.APP_PORT)), { timeoutMs: 30_000, what: 'the services gone with their dev stack' });

    dev = await startDev();
    const expected = [...accepted].filter((id) => !acked.includes(id));
    const seen = new Set<string>();
    await waitFor(
      async () => {
        for (const id of await listed()) seen.add(id);
        return expected.every((id) => seen.has(id));
      },
      // Held records come back when their visibility timeout (30 s in dev) runs out.
      { timeoutMs: 90_000, intervalMs: 500, what: 'every accepted submission in the inbox after the restart' },
    ).catch(() => undefined);
    const lost = expected.filter((id) => !seen.has(id));
    expect(lost, `lost of ${expected.length} accepted (${heldAtKill.length} were held at the kill)`).toEqual([]);
    expect(acked.filter((id) => seen.has(id)), 'acknowledged records stay acknowledged').toEqual([]);
  });
});
