// The services as real processes on the emulator: graceful drain on SIGTERM, a kill -9
// with a record held (redelivered, not lost), and inbox backpressure.
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ensureQueues, type EnsuredQueue, type LogicalQueue } from '../../services/core/transport/queues.ts';
import { startEmrSink, type EmrSink } from '../../services/devtools/emrSink.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../helpers/keys.ts';
import { freePort, runNode, waitReady, type RunningProcess } from '../helpers/processes.ts';
import { writeServiceEnv, type ServiceEnv } from '../helpers/serviceEnv.ts';
import { startTestSqs, type TestSqs } from '../helpers/sqs.ts';
import { waitFor } from '../helpers/wait.ts';

// Each test starts and stops real service processes (key loading, crypto workers, audit checks):
// on a loaded 2-core machine one start can take well over 30 s.
vi.setConfig({ testTimeout: 150_000 });

let sqs: TestSqs;
let keys: TestServiceKeyPair;
let sink: EmrSink;
let dir: string;
let env: ServiceEnv;
let queues: Record<LogicalQueue, EnsuredQueue>;
let iface: RunningProcess;
let ifaceUrl: string;
const running: RunningProcess[] = [];

async function startApp(extra: Record<string, string> = {}): Promise<{ proc: RunningProcess; url: string }> {
  const port = await freePort();
  const proc = runNode('services/app/main.ts', [], { ...env.app, PORT: String(port), ...extra });
  running.push(proc);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, proc);
  return { proc, url };
}

async function submit(body: string): Promise<string> {
  const res = await fetch(`${ifaceUrl}/v1/submissions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env.tokens.partner}`, 'content-type': 'application/fhir+json' },
    body,
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function inboxIds(url: string): Promise<string[]> {
  const res = await fetch(`${url}/v1/inbox?limit=1000`, { headers: { authorization: `Bearer ${env.tokens.reader}` } });
  return ((await res.json()) as { records: Array<{ id: string }> }).records.map((r) => r.id);
}

async function queueDepth(url: string): Promise<{ visible: number; inFlight: number }> {
  const res = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  return { visible: Number(res.Attributes?.ApproximateNumberOfMessages ?? 0), inFlight: Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) };
}

beforeAll(async () => {
  sqs = await startTestSqs();
  queues = await ensureQueues(sqs.client, { prefix: sqs.prefix, fifo: sqs.fifo, maxReceiveCount: 5, visibilityTimeoutSeconds: 5 });
  keys = await makeServiceKeyPair();
  sink = await startEmrSink();
  dir = await mkdtemp(join(tmpdir(), 'cr-proc-'));
  env = await writeServiceEnv(dir, sqs, keys, { iface: { ...sink.serviceEnv() } });
  const port = await freePort();
  iface = runNode('services/interface/main.ts', [], { ...env.iface, PORT: String(port) });
  running.push(iface);
  ifaceUrl = `http://127.0.0.1:${port}`;
  await waitReady(ifaceUrl, iface);
}, 60_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')));
  await sink?.stop();
  await sqs?.stop();
  await keys?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('services as processes', () => {
  it('fails at start with one line naming a bad variable', async () => {
    const proc = runNode('services/app/main.ts', [], { ...env.app, INBOX_CAPACITY: 'lots' });
    expect(await proc.exited).toBe(1);
    expect(proc.lines).toEqual(['app: INBOX_CAPACITY: expected an integer from 1 to 1000000, got "lots"']);
  });

  it('fails at start with one line naming the key file when the passphrase is wrong', async () => {
    const proc = runNode('services/app/main.ts', [], { ...env.app, KEY_PASSPHRASE: 'not-the-passphrase' });
    expect(await proc.exited).toBe(1);
    expect(proc.lines).toHaveLength(1);
    expect(proc.lines[0]).toContain('private.asc');
    expect(proc.lines[0]).not.toContain('not-the-passphrase');
  });

  it('drains on SIGTERM: exits 0, releases the held record, and a new instance gets it', async () => {
    const first = await startApp();
    const id = await submit(JSON.stringify({ resourceType: 'Patient', id: 'drain' }));
    await waitFor(async () => (await inboxIds(first.url)).includes(id), { what: 'record held' });
    expect(await first.proc.stop('SIGTERM')).toBe(0);
    expect(first.proc.lines.some((l) => l.includes('"consumer stopped"'))).toBe(true);
    const second = await startApp();
    // Released with visibility 0, it comes back at once, unless a long poll the stopped
    // process had open is still pending at the server and takes it (SQS and the emulator
    // both may hand a message to an abandoned poll): then it returns one visibility timeout later.
    await waitFor(async () => (await inboxIds(second.url)).includes(id), { what: 'record redelivered', timeoutMs: 60_000 });
    await fetch(`${second.url}/v1/inbox/${id}/ack`, { method: 'POST', headers: { authorization: `Bearer ${env.tokens.reader}` } });
    await second.proc.stop('SIGTERM');
  });

  it('loses nothing on kill -9: the held record is redelivered after the visibility timeout', async () => {
    const first = await startApp();
    const id = await submit(JSON.stringify({ resourceType: 'Patient', id: 'crash' }));
    await waitFor(async () => (await inboxIds(first.url)).includes(id), { what: 'record held' });
    expect(await first.proc.stop('SIGKILL')).toBe('SIGKILL');
    const second = await startApp();
    await waitFor(async () => (await inboxIds(second.url)).includes(id), { what: 'record redelivered after crash', timeoutMs: 60_000 });
    const ack = await fetch(`${second.url}/v1/inbox/${id}/ack`, { method: 'POST', headers: { authorization: `Bearer ${env.tokens.reader}` } });
    expect(ack.status).toBe(200);
    await waitFor(async () => (await queueDepth(queues['interface-to-app'].url)).inFlight === 0, { what: 'message deleted after ack' });
    await second.proc.stop('SIGTERM');
  });

  it('stops receiving when the inbox is full; messages wait in SQS and flow on ack', async () => {
    const app = await startApp({ INBOX_CAPACITY: '2' });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await submit(JSON.stringify({ resourceType: 'Patient', id: `bp${i}` })));
    await waitFor(async () => (await inboxIds(app.url)).length === 2, { what: 'inbox full' });
    // All five are still in SQS: two held in flight by the inbox, three waiting. (A long poll
    // that a stopped process left open on the emulator may briefly hide one of the three,
    // as a dead consumer would on SQS, so count visible and in-flight together.)
    await waitFor(async () => {
      const depth = await queueDepth(queues['interface-to-app'].url);
      return depth.visible + depth.inFlight === 5;
    }, { what: 'all five in SQS' });
    // Still full a heartbeat later: nothing evicted, nothing dropped.
    expect((await inboxIds(app.url)).length).toBe(2);
    const seen = new Set<string>();
    while (seen.size < 5) {
      const held = await waitFor(async () => (await inboxIds(app.url)).filter((id) => !seen.has(id)), { what: 'next record' }).then((h) => (h.length ? h : undefined));
      for (const id of held ?? []) {
        seen.add(id);
        await fetch(`${app.url}/v1/inbox/${id}/ack`, { method: 'POST', headers: { authorization: `Bearer ${env.tokens.reader}` } });
      }
    }
    expect([...seen].sort()).toEqual([...ids].sort());
    await app.proc.stop('SIGTERM');
  });
});
