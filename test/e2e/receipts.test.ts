// Signed delivery receipts and status end to end through `care-relay dev` (separate service
// processes, the emulator, the embedded store, the EMR sink): every receipt and status change of
// a submission that is acknowledged, one that is quarantined, and a chart update that is
// dead-lettered by the EMR (and one delivered); planted PHI in none of the services' output.
import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServiceKeys, type ServiceKeys } from '../../services/core/keys/load.ts';
import { createSqsClient } from '../../services/core/transport/sqsClient.ts';
import { waitDevReady } from '../helpers/devStack.ts';
import { freePort, runNode, type RunningProcess } from '../helpers/processes.ts';
import { swapForRefusedCopy } from '../helpers/refusedCopy.ts';
import { waitFor } from '../helpers/wait.ts';

const PHI = 'Ottoline Vexbridge-Phi 1944-06-06';
let dir: string;
let dev: RunningProcess;
let ports: { iface: number; app: number; sink: number; sqs: number; mllp: number; mllpSink: number };
let secrets: { partnerToken: string; readerToken: string; writerToken: string; adminToken: string };
let interfaceKeys: ServiceKeys;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-receipts-'));
  ports = { iface: await freePort(), app: await freePort(), sink: await freePort(), sqs: await freePort(), mllp: await freePort(), mllpSink: await freePort() };
  dev = runNode('services/cli/main.ts', ['dev', '--data', join(dir, 'data'), '--keys', join(dir, 'keys'), '--ready-timeout', '150'], {
    INTERFACE_PORT: String(ports.iface),
    APP_PORT: String(ports.app),
    EMR_SINK_PORT: String(ports.sink),
    SQS_PORT: String(ports.sqs),
    MLLP_PORT: String(ports.mllp),
    EMR_MLLP_SINK_PORT: String(ports.mllpSink),
  });
  await waitDevReady(dev, 200_000);
  secrets = JSON.parse(readFileSync(join(dir, 'data', 'secrets.json'), 'utf8')) as typeof secrets;
  // The test plays a faulty interface for the quarantined case: it signs with the interface's dev key.
  const keysDir = join(dir, 'keys', 'interface');
  interfaceKeys = await loadServiceKeys({ dir: keysDir, passphrase: (await readFile(join(keysDir, 'passphrase'), 'utf8')).trim() });
}, 240_000);

afterAll(async () => {
  await dev?.stop('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

const iface = (path: string): string => `http://127.0.0.1:${ports.iface}${path}`;
const app = (path: string): string => `http://127.0.0.1:${ports.app}${path}`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
type View = { status: string; reasonCode?: string; timeline: Array<{ status: string; at: string; reasonCode?: string; emrStatus?: number }> };

async function reaches(url: string, token: string, status: string): Promise<View> {
  return waitFor(
    async () => {
      const res = await fetch(url, { headers: bearer(token) });
      const view = res.ok ? ((await res.json()) as View) : undefined;
      return view?.status === status ? view : undefined;
    },
    { timeoutMs: 60_000, what: `${url} to reach ${status}` },
  );
}

async function submit(): Promise<string> {
  const res = await fetch(iface('/v1/submissions'), { method: 'POST', headers: { ...bearer(secrets.partnerToken), 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Patient', name: [{ text: PHI }] }) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function emergency(active: boolean): Promise<void> {
  const res = await fetch(app('/v1/admin/emergency'), { method: 'PUT', headers: { ...bearer(secrets.adminToken), 'content-type': 'application/json' }, body: JSON.stringify({ active }) });
  expect(res.status).toBe(200);
}

describe('receipts and status through care-relay dev', () => {
  it('acknowledged: accepted → queued → held → acknowledged, each step timed', async () => {
    const id = await submit();
    const held = await reaches(iface(`/v1/submissions/${id}`), secrets.partnerToken, 'held');
    expect(held.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'held']);
    const read = await fetch(app(`/v1/inbox/${id}`), { headers: bearer(secrets.readerToken) });
    expect(((await read.json()) as { name: Array<{ text: string }> }).name[0]!.text).toBe(PHI);
    expect((await fetch(app(`/v1/inbox/${id}/ack`), { method: 'POST', headers: bearer(secrets.readerToken) })).status).toBe(200);
    const done = await reaches(iface(`/v1/submissions/${id}`), secrets.partnerToken, 'acknowledged');
    expect(done.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'held', 'acknowledged']);
    const times = done.timeline.map((s) => Date.parse(s.at));
    expect(times.every((t) => Number.isFinite(t))).toBe(true);
    // Without a token, or with the app's tokens, nothing.
    expect((await fetch(iface(`/v1/submissions/${id}`))).status).toBe(401);
    expect((await fetch(iface(`/v1/submissions/${id}`), { headers: bearer(secrets.readerToken) })).status).toBe(401);
  }, 150_000);

  it('quarantined at the app: rejected with the reason code the app attributed', async () => {
    await emergency(true);
    const id = await submit();
    const sqs = createSqsClient({ endpoint: `http://127.0.0.1:${ports.sqs}`, region: 'us-east-1', credentials: { accessKeyId: 'dev', secretAccessKey: 'dev' } });
    try {
      const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'interface-to-app' }));
      await swapForRefusedCopy({ client: sqs, queueUrl: QueueUrl!, fifo: false, own: interfaceKeys.own, peers: interfaceKeys.peers, id, partner: 'demo-partner', body: JSON.stringify({ resourceType: 'Patient', note: PHI }) });
    } catch (err) {
      console.error(dev.lines.filter((l) => l.includes(id) || l.includes('emergency') || l.includes('paused')).join('\n'));
      throw err;
    } finally {
      sqs.destroy();
    }
    await emergency(false);
    const view = await reaches(iface(`/v1/submissions/${id}`), secrets.partnerToken, 'rejected');
    expect(view.reasonCode).toBe('CR_ENVELOPE_WRONG_QUEUE');
    expect(view.timeline.map((s) => [s.status, s.reasonCode])).toEqual([
      ['accepted', undefined],
      ['queued', undefined],
      ['rejected', 'CR_ENVELOPE_WRONG_QUEUE'],
    ]);
  }, 150_000);

  it('chart updates: delivered with the EMR status; dead-lettered by the EMR → failed with the reason code', async () => {
    const send = async (): Promise<string> => {
      const res = await fetch(app('/v1/chart-updates'), { method: 'POST', headers: { ...bearer(secrets.writerToken), 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Observation', note: PHI }) });
      expect(res.status).toBe(202);
      return ((await res.json()) as { id: string }).id;
    };
    const ok = await send();
    const delivered = await reaches(app(`/v1/chart-updates/${ok}`), secrets.writerToken, 'delivered');
    expect(delivered.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'delivered']);
    expect(delivered.timeline.at(-1)!.emrStatus).toBe(200);

    expect((await fetch(`http://127.0.0.1:${ports.sink}/_mode`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'fail', status: 422 }) })).status).toBeLessThan(300);
    const refused = await send();
    const failed = await reaches(app(`/v1/chart-updates/${refused}`), secrets.writerToken, 'failed');
    expect(failed.reasonCode).toBe('CR_EMR_HTTP_422');
    expect(failed.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'failed']);
    await fetch(`http://127.0.0.1:${ports.sink}/_mode`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'ok' }) });
    // A reader may not read chart update status.
    expect((await fetch(app(`/v1/chart-updates/${ok}`), { headers: bearer(secrets.readerToken) })).status).toBe(403);
  }, 150_000);

  it("every receipt was applied and audited; planted PHI is in no service's output and no audit line", async () => {
    const ifaceAudit = await readFile(join(dir, 'data', 'interface-audit.jsonl'), 'utf8');
    const appAudit = await readFile(join(dir, 'data', 'app-audit.jsonl'), 'utf8');
    // held, acknowledged, rejected at the interface; delivered, failed at the app.
    expect(ifaceAudit.split('\n').filter((l) => l.includes('"receipt.applied"')).length).toBeGreaterThanOrEqual(3);
    expect(appAudit.split('\n').filter((l) => l.includes('"receipt.applied"')).length).toBeGreaterThanOrEqual(2);
    const serviceLines = dev.lines.filter((l) => l.startsWith('[interface]') || l.startsWith('[app]'));
    expect(serviceLines.length).toBeGreaterThan(0);
    for (const text of [...serviceLines, ifaceAudit, appAudit]) expect(text).not.toContain('Vexbridge');
  });
});
