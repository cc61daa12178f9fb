// Partner status callbacks through a real interface service (in-process) on the emulator, to
// real HTTPS receivers: retries under one webhook id, a hanging receiver, a redirect not
// followed, a restart between attempts, 410, the attempt bound, and planted PHI nowhere.
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../../services/core/http/auth.ts';
import { ensureQueues, type EnsuredQueue, type LogicalQueue } from '../../../services/core/transport/queues.ts';
import { loadInterfaceConfig } from '../../../services/interface/config.ts';
import { startInterfaceService, type InterfaceService } from '../../../services/interface/service.ts';
import type { SubmissionStatusEvent } from '../../../services/interface/status/events.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';
import { captureLogger, type CapturedLogger } from '../../helpers/logs.ts';
import { writeServiceEnv } from '../../helpers/serviceEnv.ts';
import { startTestSqs, type TestSqs } from '../../helpers/sqs.ts';
import { makeSelfSignedCert } from '../../helpers/tls.ts';
import { waitFor } from '../../helpers/wait.ts';
import { newWhsec, startWebhookReceiver, verifyWithReference, type ReceivedCallback, type WebhookReceiver } from '../../helpers/webhookReceiver.ts';
import { readAudit } from '../../security/helpers.ts';

const PHI = { name: 'Zebulon Quagmire-Phi', dob: '1931-02-29', phone: '+15550199321', mrn: 'MRN-PHI-77310' };

let sqs: TestSqs;
let queues: Record<LogicalQueue, EnsuredQueue>;
let keys: TestServiceKeyPair;
let dir: string;
let env: Record<string, string>;
let token: string;
let secret: string;
let receiver: WebhookReceiver;
let elsewhere: WebhookReceiver;
let iface: InterfaceService;
let log: CapturedLogger;

const auditFile = (): string => join(dir, 'interface-audit.jsonl');
const forId = (id: string): ReceivedCallback[] => receiver.received.filter((r) => r.headers['webhook-id'] === id);
const uuid = (n: number): string => `0192f0a4-${String(n).padStart(4, '0')}-7aaa-8bbb-0123456789ab`;

function publish(n: number, status: SubmissionStatusEvent['status'], reasonCode?: string): string {
  iface.statusEvents.publish({ submissionId: uuid(n), partner: 'acme-health', status, ...(reasonCode ? { reasonCode } : {}), at: new Date().toISOString() });
  return `msg_${uuid(n)}_${status}`;
}

async function audited(action: string, submissionId: string): Promise<Record<string, unknown>> {
  return waitFor(async () => (await readAudit(auditFile())).find((l) => l.action === action && l.resourceId === submissionId) as Record<string, unknown> | undefined, { what: `${action} for ${submissionId}`, timeoutMs: 60_000 });
}

async function depth(url: string): Promise<number> {
  const res = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  return Number(res.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
}

async function enqueued(): Promise<number> {
  const metric = await iface.runtime.metrics.registry.getSingleMetric('care_relay_partner_callbacks_total')?.get();
  return metric?.values.find((v) => v.labels.outcome === 'enqueued')?.value ?? 0;
}

async function startIface(): Promise<InterfaceService> {
  return startInterfaceService(loadInterfaceConfig(env), { logger: log.logger, listen: false });
}

beforeAll(async () => {
  sqs = await startTestSqs();
  queues = await ensureQueues(sqs.client, { prefix: sqs.prefix, fifo: sqs.fifo, maxReceiveCount: 5, visibilityTimeoutSeconds: 5 });
  keys = await makeServiceKeyPair();
  dir = await mkdtemp(join(tmpdir(), 'cr-callbacks-'));
  const tls = await makeSelfSignedCert(dir, 'receiver');
  receiver = await startWebhookReceiver({ cert: tls.cert, key: await readFile(tls.keyFile) });
  elsewhere = await startWebhookReceiver({ cert: tls.cert, key: await readFile(tls.keyFile) });
  const written = await writeServiceEnv(dir, sqs, keys, {
    iface: {
      EMR_URL: 'http://127.0.0.1:9/emr',
      PARTNER_CALLBACK_CA_FILE: tls.certFile,
      // The test's receivers are on this machine (https://localhost): a partner on a private network, for the relay.
      PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS: 'true',
      PARTNER_CALLBACK_TIMEOUT_MS: '1500',
      PARTNER_CALLBACK_BACKOFF_SECONDS: '1',
      PARTNER_CALLBACK_BACKOFF_MAX_SECONDS: '2',
      PARTNER_CALLBACK_MAX_ATTEMPTS: '3',
    },
  });
  env = written.iface;
  token = written.tokens.partner;
  secret = newWhsec();
  await writeFile(join(dir, 'acme.whsec'), `${secret}\n`);
  await writeFile(
    join(dir, 'partners.json'),
    JSON.stringify({ tokens: [{ name: 'acme-health', sha256: hashToken(token), rateLimitPerMinute: 100_000, callback: { url: receiver.url, secretFile: 'acme.whsec' } }] }),
  );
  log = captureLogger('interface');
  iface = await startIface();
}, 120_000);

afterAll(async () => {
  await iface?.stop();
  await receiver?.stop();
  await elsewhere?.stop();
  await sqs?.stop();
  await keys?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('partner status callbacks', () => {
  it('the accepted and queued of a submission reach the partner signed (reference library), ids and codes only: planted PHI is in no body, header, log line or audit line', async () => {
    const res = await iface.server.inject({
      method: 'POST',
      url: '/v1/submissions',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
      payload: JSON.stringify({ resourceType: 'Patient', id: PHI.mrn, name: [{ text: PHI.name }], birthDate: PHI.dob, telecom: [{ value: PHI.phone }] }),
    });
    expect(res.statusCode).toBe(202);
    const id = (res.json() as { id: string }).id;
    const accepted = await waitFor(() => forId(`msg_${id}_accepted`)[0], { what: 'accepted callback', timeoutMs: 60_000 });
    const queued = await waitFor(() => forId(`msg_${id}_queued`)[0], { what: 'queued callback', timeoutMs: 60_000 });
    expect(verifyWithReference(secret, accepted)).toEqual({ type: 'submission.accepted', timestamp: expect.any(String), data: { submissionId: id, status: 'accepted' } });
    expect(verifyWithReference(secret, queued)).toEqual({ type: 'submission.queued', timestamp: expect.any(String), data: { submissionId: id, status: 'queued' } });
    expect(accepted.headers['content-type']).toBe('application/json');
    await audited('callback.delivered', id);
    const everything = [
      ...receiver.received.map((r) => JSON.stringify(r)),
      ...log.lines,
      await readFile(auditFile(), 'utf8'),
    ].join('\n');
    for (const value of Object.values(PHI)) expect(everything).not.toContain(value);
    expect(everything).not.toContain(secret.slice(6));
  });

  it('intake does not wait for callbacks: with the receiver hanging on a callback, a submission still gets 202', async () => {
    receiver.fallback = 'hang';
    try {
      const hangingBefore = receiver.received.length;
      const first = await iface.server.inject({ method: 'POST', url: '/v1/submissions', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' }, payload: '{"resourceType":"Patient","id":"h1"}' });
      expect(first.statusCode).toBe(202);
      await waitFor(() => receiver.received.length > hangingBefore, { what: 'a callback hanging at the receiver' });
      const second = await iface.server.inject({ method: 'POST', url: '/v1/submissions', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' }, payload: '{"resourceType":"Patient","id":"h2"}' });
      expect(second.statusCode).toBe(202);
      receiver.fallback = 200;
      // Every callback of both submissions delivered before the next test scripts the receiver.
      const ids = [first, second].flatMap((r) => ['accepted', 'queued'].map((status) => `msg_${(r.json() as { id: string }).id}_${status}`));
      await waitFor(async () => {
        const delivered = new Set((await readAudit(auditFile())).filter((l) => l.action === 'callback.delivered').map((l) => (l.details as { webhookId?: string } | undefined)?.webhookId));
        return ids.every((id) => delivered.has(id));
      }, { what: 'the held callbacks delivered', timeoutMs: 60_000 });
    } finally {
      receiver.fallback = 200;
    }
  });

  it('a receiver answering 500 then 200: retried with backoff under the same webhook id, each attempt signed', async () => {
    receiver.script.push(500);
    const id = publish(1, 'held');
    const [first, second] = await waitFor(() => (forId(id).length >= 2 ? forId(id) : undefined), { what: 'two attempts', timeoutMs: 60_000 });
    for (const attempt of [first!, second!]) expect(verifyWithReference(secret, attempt)).toMatchObject({ type: 'submission.held' });
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(500);
    expect((await audited('callback.delivered', uuid(1))).details).toMatchObject({ httpStatus: 200, attempt: 2, webhookId: id });
    expect(log.entries().find((e) => e.msg === 'partner callback failed; retrying' && e.webhookId === id)).toMatchObject({ reason: 'CR_CALLBACK_HTTP_500' });
    expect(log.lines.join('\n')).not.toContain('receiver body');
  });

  it('a hanging receiver: the attempt times out (PARTNER_CALLBACK_TIMEOUT_MS) and is retried', async () => {
    receiver.script.push('hang');
    const id = publish(2, 'acknowledged');
    await audited('callback.delivered', uuid(2));
    expect(forId(id)).toHaveLength(2);
    expect(log.entries().find((e) => e.msg === 'partner callback failed; retrying' && e.webhookId === id)).toMatchObject({ reason: 'CR_CALLBACK_TIMEOUT' });
  });

  it('a redirect is not followed: the other host gets nothing, the callback is retried at its own URL', async () => {
    receiver.script.push({ redirect: elsewhere.url });
    const id = publish(3, 'rejected', 'CR_ENVELOPE_SIGNATURE_INVALID');
    expect((await audited('callback.delivered', uuid(3))).details).toMatchObject({ attempt: 2 });
    expect(forId(id)).toHaveLength(2);
    expect(verifyWithReference(secret, forId(id)[1]!)).toMatchObject({ data: { reasonCode: 'CR_ENVELOPE_SIGNATURE_INVALID' } });
    expect(elsewhere.received).toHaveLength(0);
  });

  it('410 Gone stops the retries of that callback at once (audited)', async () => {
    receiver.script.push(410);
    const id = publish(4, 'queued');
    await audited('callback.stopped', uuid(4));
    await waitFor(async () => (await depth(queues['interface-partner-callbacks'].url)) === 0, { what: 'the job deleted' });
    expect(forId(id)).toHaveLength(1);
  });

  it('a receiver that keeps failing: dead-lettered after PARTNER_CALLBACK_MAX_ATTEMPTS, audited, the job in the callbacks DLQ', async () => {
    receiver.script.push(503, 503, 503);
    const id = publish(5, 'dead-lettered', 'CR_EMR_HTTP_500');
    expect((await audited('callback.dead-lettered', uuid(5))).details).toMatchObject({ reason: 'CR_CALLBACK_ATTEMPTS_EXHAUSTED', lastReason: 'CR_CALLBACK_HTTP_503', attempt: 3 });
    expect(forId(id)).toHaveLength(3);
    await waitFor(async () => (await depth(queues['interface-partner-callbacks'].dlqUrl)) === 1, { what: 'the job in the DLQ' });
  });

  it('a restart between attempts: the job survives in the queue and is delivered once by the new instance (attempts counted, not SQS receives)', async () => {
    receiver.script.push(500);
    const id = publish(6, 'held');
    await waitFor(() => forId(id).length === 1, { what: 'first attempt' });
    await waitFor(() => log.entries().some((e) => e.msg === 'partner callback failed; retrying' && e.webhookId === id), { what: 'retry decided' });
    await iface.stop();
    iface = await startIface();
    const delivered = (await audited('callback.delivered', uuid(6))).details as Record<string, unknown>;
    expect(delivered).toMatchObject({ httpStatus: 200, attempt: 2 });
    await waitFor(async () => (await depth(queues['interface-partner-callbacks'].url)) === 0, { what: 'the job deleted' });
    expect(forId(id)).toHaveLength(2);
    expect(verifyWithReference(secret, forId(id)[1]!)).toMatchObject({ type: 'submission.held' });
  });

  it('the same status change published twice (two instances, a replay) reaches the partner once', async () => {
    const id = publish(8, 'acknowledged');
    const first = await audited('callback.delivered', uuid(8));
    const before = await enqueued();
    publish(8, 'acknowledged');
    await waitFor(async () => (await enqueued()) > before, { what: 'the second job enqueued' });
    // A FIFO queue drops the second job itself (same deduplication id); a standard queue delivers it and the ledger answers.
    if (!sqs.fifo) {
      await waitFor(() => log.entries().some((e) => e.msg === 'partner callback already finished; not sent again' && e.webhookId === id), { what: 'the duplicate job acknowledged', timeoutMs: 60_000 });
      // The copy audits the outcome the ledger kept again, marked `copy` (its first line may be missing after a crash).
      const copy = await waitFor(async () => (await readAudit(auditFile())).find((l) => l.action === 'callback.delivered' && l.resourceId === uuid(8) && (l.details as { copy?: boolean }).copy === true), { what: 'the copy audited', timeoutMs: 60_000 });
      expect(copy.details).toMatchObject({ webhookId: id, httpStatus: (first.details as { httpStatus: number }).httpStatus, copy: true });
    }
    await waitFor(async () => (await depth(queues['interface-partner-callbacks'].url)) === 0, { what: 'no job left' });
    expect(forId(id)).toHaveLength(1);
  });

  it('SIGHUP-style reload: a broken callback in the partners file changes nothing and is audited; the old callback keeps working', async () => {
    const good = await readFile(join(dir, 'partners.json'), 'utf8');
    // Plain http to loopback is refused without PARTNER_CALLBACK_ALLOW_INSECURE (this service is not in development).
    await writeFile(join(dir, 'partners.json'), good.replace(receiver.url, receiver.url.replace('https://localhost', 'http://127.0.0.1')));
    expect(() => iface.reload()).toThrow(/callback\.url/);
    await waitFor(async () => (await readAudit(auditFile())).some((l) => l.action === 'config.reload_failed' && (l.details as { reason?: string } | undefined)?.reason === 'CR_CALLBACK_CONFIG_INVALID'), { what: 'reload_failed audited' });
    await writeFile(join(dir, 'partners.json'), good);
    const id = publish(7, 'accepted');
    await audited('callback.delivered', uuid(7));
    expect(forId(id)).toHaveLength(1);
  });
});
