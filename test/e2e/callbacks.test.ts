// Partner status callbacks end to end through a real interface process: a partner submits over
// HTTP, its `accepted` and `queued` reach its HTTPS receiver signed (checked with the Standard
// Webhooks reference library); a secret rotation applied by SIGHUP signs with both secrets.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { hashToken } from '../../services/core/http/auth.ts';
import { ensureQueues } from '../../services/core/transport/queues.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../helpers/keys.ts';
import { freePort, runNode, waitReady, type RunningProcess } from '../helpers/processes.ts';
import { writeServiceEnv } from '../helpers/serviceEnv.ts';
import { startTestSqs, type TestSqs } from '../helpers/sqs.ts';
import { makeSelfSignedCert } from '../helpers/tls.ts';
import { waitFor } from '../helpers/wait.ts';
import { newWhsec, startWebhookReceiver, verifyWithReference, type ReceivedCallback, type WebhookReceiver } from '../helpers/webhookReceiver.ts';

// A real service process starts slowly on a loaded 2-core machine.
vi.setConfig({ testTimeout: 150_000 });

const PHI = { name: 'Philomena Testcase-Secret', dob: '1929-12-31', mrn: 'MRN-E2E-55102' };

let sqs: TestSqs;
let keys: TestServiceKeyPair;
let dir: string;
let receiver: WebhookReceiver;
let iface: RunningProcess;
let url: string;
let token: string;
let secret: string;

const forId = (id: string): ReceivedCallback[] => receiver.received.filter((r) => r.headers['webhook-id'] === id);

async function submit(body: string): Promise<string> {
  const res = await fetch(`${url}/v1/submissions`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' }, body });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

beforeAll(async () => {
  sqs = await startTestSqs();
  await ensureQueues(sqs.client, { prefix: sqs.prefix, fifo: sqs.fifo, maxReceiveCount: 5, visibilityTimeoutSeconds: 5 });
  keys = await makeServiceKeyPair();
  dir = await mkdtemp(join(tmpdir(), 'cr-e2e-callbacks-'));
  const tls = await makeSelfSignedCert(dir, 'partner');
  receiver = await startWebhookReceiver({ cert: tls.cert, key: await readFile(tls.keyFile) });
  const env = await writeServiceEnv(dir, sqs, keys, { iface: { EMR_URL: 'http://127.0.0.1:9/emr', PARTNER_CALLBACK_CA_FILE: tls.certFile, PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS: 'true' } });
  token = env.tokens.partner;
  secret = newWhsec();
  await writeFile(join(dir, 'acme.whsec'), `${secret}\n`);
  await writeFile(join(dir, 'partners.json'), JSON.stringify({ tokens: [{ name: 'acme-health', sha256: hashToken(token), callback: { url: receiver.url, secretFile: 'acme.whsec' } }] }));
  const port = await freePort();
  iface = runNode('services/interface/main.ts', [], { ...env.iface, PORT: String(port) });
  url = `http://127.0.0.1:${port}`;
  await waitReady(url, iface, 120_000);
}, 180_000);

afterAll(async () => {
  await iface?.stop('SIGKILL');
  await receiver?.stop();
  await sqs?.stop();
  await keys?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('partner status callbacks through a real interface process', () => {
  it('accepted and queued reach the partner\'s HTTPS receiver with valid Standard Webhooks signatures; no PHI in them or in the process output', async () => {
    const id = await submit(JSON.stringify({ resourceType: 'Patient', id: PHI.mrn, name: [{ text: PHI.name }], birthDate: PHI.dob }));
    const accepted = await waitFor(() => forId(`msg_${id}_accepted`)[0], { what: 'accepted callback', timeoutMs: 60_000 });
    const queued = await waitFor(() => forId(`msg_${id}_queued`)[0], { what: 'queued callback', timeoutMs: 60_000 });
    expect(verifyWithReference(secret, accepted)).toMatchObject({ type: 'submission.accepted', data: { submissionId: id, status: 'accepted' } });
    expect(verifyWithReference(secret, queued)).toMatchObject({ type: 'submission.queued', data: { submissionId: id, status: 'queued' } });
    expect(Date.parse((JSON.parse(accepted.body) as { timestamp: string }).timestamp)).toBeLessThanOrEqual(Date.parse((JSON.parse(queued.body) as { timestamp: string }).timestamp));
    await waitFor(() => iface.lines.some((l) => l.includes('"partner callback delivered"') && l.includes(`msg_${id}_queued`)), { what: 'delivery logged' });
    const everything = [...receiver.received.map((r) => JSON.stringify(r)), ...iface.lines].join('\n');
    for (const value of Object.values(PHI)) expect(everything).not.toContain(value);
    expect(everything).not.toContain(secret.slice(6));
  });

  it('a secret rotation applied with SIGHUP: the next callbacks are signed with the old and the new secret', async () => {
    const next = newWhsec();
    await writeFile(join(dir, 'acme.whsec'), `${secret}\n${next}\n`);
    iface.child.kill('SIGHUP');
    await waitFor(() => iface.lines.some((l) => l.includes('"tokens reloaded"')), { what: 'reload logged' });
    const id = await submit(JSON.stringify({ resourceType: 'Patient', id: 'rotation' }));
    const queued = await waitFor(() => forId(`msg_${id}_queued`)[0], { what: 'queued callback', timeoutMs: 60_000 });
    expect(String(queued.headers['webhook-signature']).split(' ')).toHaveLength(2);
    for (const s of [secret, next]) expect(verifyWithReference(s, queued)).toMatchObject({ type: 'submission.queued' });
  });
});
