// Signed delivery receipts and the status routes, through the real relay in one process (SQS
// emulator, embedded DynamoDB, EMR sink): every status change of an acknowledged, a quarantined
// and a dead-lettered message, who may read it, and planted PHI nowhere.
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope } from '../../services/core/envelope/envelope.ts';
import { seal } from '../../services/core/envelope/seal.ts';
import { hashToken } from '../../services/core/http/auth.ts';
import type { SubmissionStatusEvent } from '../../services/interface/status/events.ts';
import { swapForRefusedCopy } from '../helpers/refusedCopy.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const PHI = 'Zebulon Quartermain-Phi 1931-02-29';
const tokens = { other: randomBytes(18).toString('hex'), far: randomBytes(18).toString('hex') };
let stack: TestStack;
const events: SubmissionStatusEvent[] = [];

beforeAll(async () => {
  stack = await startStack({ ifaceEnv: { MLLP_INTAKE_PORT: '0' } });
  // Two more partners: another clinic, and one allowed only from an address the tests never use.
  const file = join(stack.dir, 'partners.json');
  const partners = JSON.parse(await readFile(file, 'utf8')) as { tokens: unknown[] };
  partners.tokens.push({ name: 'other-clinic', sha256: hashToken(tokens.other), allowCidrs: ['127.0.0.1/32', '::1/128'], mllp: { sendingFacilities: ['OTHER-LAB'] } }, { name: 'far-away', sha256: hashToken(tokens.far), allowCidrs: ['10.9.9.0/24'] });
  await writeFile(file, JSON.stringify(partners));
  stack.iface.reload();
  stack.iface.statusEvents.subscribe((e) => events.push(e));
  // Two service runtimes and an MLLP listener start slowly on a loaded machine.
}, 180_000);
afterAll(async () => {
  await stack?.stop();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function submit(body = `{"resourceType":"Patient","name":[{"text":"${PHI}"}]}`): Promise<string> {
  const res = await stack.iface.server.inject({ method: 'POST', url: '/v1/submissions', headers: { ...bearer(stack.tokens.partner), 'content-type': 'application/fhir+json' }, payload: body });
  expect(res.statusCode).toBe(202);
  return (res.json() as { id: string }).id;
}

async function submissionStatus(id: string, token = stack.tokens.partner) {
  return stack.iface.server.inject({ method: 'GET', url: `/v1/submissions/${id}`, headers: bearer(token) });
}

type View = { id: string; status: string; reasonCode?: string; timeline: Array<{ status: string; at: string; reasonCode?: string; emrStatus?: number }> };

async function statusReaches(get: () => Promise<{ statusCode: number; json(): unknown }>, status: string, timeoutMs = 15_000): Promise<View> {
  return waitFor(
    async () => {
      const res = await get();
      const view = res.statusCode === 200 ? (res.json() as View) : undefined;
      return view?.status === status ? view : undefined;
    },
    { what: `status ${status}`, timeoutMs },
  );
}

describe('submission status through receipts', () => {
  let ackedId: string;

  it('an acknowledged submission: accepted → queued → held → acknowledged, each timed, each published', async () => {
    ackedId = await submit();
    const held = await statusReaches(() => submissionStatus(ackedId), 'held');
    expect(held.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'held']);
    const ack = await stack.app.server.inject({ method: 'POST', url: `/v1/inbox/${ackedId}/ack`, headers: bearer(stack.tokens.reader) });
    expect(ack.statusCode).toBe(200);
    const done = await statusReaches(() => submissionStatus(ackedId), 'acknowledged');
    expect(done.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'held', 'acknowledged']);
    for (const step of done.timeline) expect(Date.parse(step.at)).not.toBeNaN();
    const res = await submissionStatus(ackedId);
    expect(res.headers['cache-control']).toBe('no-store');
    await waitFor(() => events.filter((e) => e.submissionId === ackedId).length === 4, { what: 'four published changes' });
    expect(events.filter((e) => e.submissionId === ackedId).map((e) => [e.status, e.partner])).toEqual([
      ['accepted', 'acme-health'],
      ['queued', 'acme-health'],
      ['held', 'acme-health'],
      ['acknowledged', 'acme-health'],
    ]);
    // The interface applied each receipt once and audited it (a copy SQS delivered again would add a line marked `copy`).
    const audit = await readFile(join(stack.dir, 'interface-audit.jsonl'), 'utf8');
    expect(audit.split('\n').filter((l) => l.includes('"receipt.applied"') && l.includes(ackedId) && !l.includes('"copy":true'))).toHaveLength(2);
  });

  it('hostile readers: another partner gets the same 404 as an unknown id; no token 401; a wrong address 403; an app token is not a partner', async () => {
    const other = await submissionStatus(ackedId, tokens.other);
    const unknown = await submissionStatus('0190b9a4-0000-7000-8000-000000000000');
    const garbage = await submissionStatus('..%2F..%2Fetc');
    expect(other.statusCode).toBe(404);
    expect(other.headers['content-type']).toMatch(/application\/problem\+json/);
    for (const r of [unknown, garbage]) {
      expect(r.statusCode).toBe(404);
      expect(r.json()).toEqual(other.json());
    }
    expect((other.json() as { code: string }).code).toBe('CR_STATUS_NOT_FOUND');
    expect((await stack.iface.server.inject({ method: 'GET', url: `/v1/submissions/${ackedId}` })).statusCode).toBe(401);
    expect((await submissionStatus(ackedId, tokens.far)).statusCode).toBe(403);
    const trail = (await readFile(join(stack.dir, 'interface-audit.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(trail.find((l) => l.action === 'auth.forbidden' && l.actor === 'far-away')).toMatchObject({ resourceId: 'GET /v1/submissions/:id', outcome: 'failure' });
    expect((await submissionStatus(ackedId, stack.tokens.writer)).statusCode).toBe(401);
    expect((await submissionStatus(ackedId, stack.tokens.admin)).statusCode).toBe(401);
  });

  it('a quarantined submission: the app attributes the refusal, the partner sees rejected with the reason code', async () => {
    const admin = bearer(stack.tokens.admin);
    expect((await stack.app.server.inject({ method: 'PUT', url: '/v1/admin/emergency', headers: admin, payload: { active: true } })).statusCode).toBe(200);
    const id = await submit();
    await swapForRefusedCopy({ client: stack.sqs.client, queueUrl: stack.queues['interface-to-app'].url, fifo: stack.sqs.fifo, own: stack.keys.interface.own, peers: stack.keys.interface.peers, id, partner: 'acme-health', body: `{"resourceType":"Patient","note":"${PHI}"}` });
    expect((await stack.app.server.inject({ method: 'PUT', url: '/v1/admin/emergency', headers: admin, payload: { active: false } })).statusCode).toBe(200);
    const view = await statusReaches(() => submissionStatus(id), 'rejected');
    expect(view.reasonCode).toBe('CR_ENVELOPE_WRONG_QUEUE');
    expect(view.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'rejected']);
    await waitFor(() => events.some((e) => e.submissionId === id && e.status === 'rejected' && e.reasonCode === 'CR_ENVELOPE_WRONG_QUEUE'), { what: 'the rejected event' });
  });
});

describe('MLLP submissions', () => {
  it('have the envelope id of their ACK (MSA-3) as status id: the partner reads accepted → queued → held over HTTP', async () => {
    const hl7 = `MSH|^~\\&|LIS|OTHER-LAB|CARE|RELAY|20260101120000||ORU^R01^ORU_R01|ctl-${randomBytes(4).toString('hex')}|P|2.5.1\rPID|1||77^^^OTHER^MR||${PHI}\r`;
    const ack = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: stack.iface.mllp!.listener.port });
      let got = '';
      socket.on('data', (c: Buffer) => {
        got += c.toString('utf8');
        if (got.includes('\x1c')) socket.end();
      });
      socket.on('close', () => resolve(got));
      socket.on('error', reject);
      socket.write(Buffer.concat([Buffer.from([0x0b]), Buffer.from(hl7, 'utf8'), Buffer.from([0x1c, 0x0d])]));
    });
    const msa = ack.split('\r').find((seg) => seg.replace(/^\x0b/, '').startsWith('MSA|'))!.replace(/^\x0b/, '').split('|');
    expect(msa[1]).toBe('AA');
    const id = msa[3]!;
    const view = await statusReaches(() => submissionStatus(id, tokens.other), 'held');
    expect(view.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'held']);
    expect((await submissionStatus(id)).statusCode).toBe(404);
  });
});

describe('chart update status through receipts', () => {
  async function chartUpdate(): Promise<string> {
    const res = await stack.app.server.inject({ method: 'POST', url: '/v1/chart-updates', headers: { ...bearer(stack.tokens.writer), 'content-type': 'application/fhir+json' }, payload: `{"resourceType":"Observation","note":"${PHI}"}` });
    expect(res.statusCode).toBe(202);
    return (res.json() as { id: string }).id;
  }
  const chartStatus = (id: string, token = stack.tokens.writer) => stack.app.server.inject({ method: 'GET', url: `/v1/chart-updates/${id}`, headers: bearer(token) });

  it('delivered: accepted → queued → delivered with the EMR status', async () => {
    stack.sink.setMode({ kind: 'ok' });
    const id = await chartUpdate();
    const view = await statusReaches(() => chartStatus(id), 'delivered');
    expect(view.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'delivered']);
    expect(view.timeline.at(-1)!.emrStatus).toBe(200);
    // Roles: a reader, a partner token and no token are refused.
    expect((await chartStatus(id, stack.tokens.reader)).statusCode).toBe(403);
    expect((await chartStatus(id, stack.tokens.partner)).statusCode).toBe(401);
    expect((await stack.app.server.inject({ method: 'GET', url: `/v1/chart-updates/${id}` })).statusCode).toBe(401);
    expect((await chartStatus('0190b9a4-0000-7000-8000-000000000000')).json()).toMatchObject({ status: 404, code: 'CR_STATUS_NOT_FOUND' });
  });

  it('dead-lettered by the EMR: accepted → queued → failed with the reason code', async () => {
    stack.sink.setMode({ kind: 'fail', status: 422 });
    const id = await chartUpdate();
    const view = await statusReaches(() => chartStatus(id), 'failed');
    stack.sink.setMode({ kind: 'ok' });
    expect(view.reasonCode).toBe('CR_EMR_HTTP_422');
    expect(view.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'failed']);
  });
});

describe('dead-lettered by redrive', () => {
  it('a submission whose hold failed on every receive stayed queued: the partner reads dead-lettered with the reason code, the message is in the DLQ, one receipt', async () => {
    const table = stack.app.runtime.state;
    const update = table.update.bind(table);
    // The injected fault: the state table refuses every inbox claim (transient, no CR code).
    table.update = (pk, change) => (pk.startsWith('apply#') ? Promise.reject(Object.assign(new Error('throttled'), { name: 'ProvisionedThroughputExceededException' })) : update(pk, change));
    try {
      const id = await submit();
      // maxReceiveCount 3 on the stack's queues: the backoff after two failed receives is a few seconds.
      const view = await statusReaches(() => submissionStatus(id), 'dead-lettered', 90_000);
      expect(view.reasonCode).toBe('CR_ENVELOPE_EFFECT_FAILED');
      expect(view.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'dead-lettered']);
      const failures = () => stack.logs.app.entries().filter((e) => e.msg === 'failed on its last receive; SQS will dead-letter it' && e.envelopeId === id);
      expect(failures()).toHaveLength(1);
      expect(failures()[0]).toMatchObject({ receiveCount: 3, code: 'CR_ENVELOPE_EFFECT_FAILED' });
      // SQS moved it to the DLQ on the next receive, and the app told nothing twice.
      await waitFor(
        async () => {
          const res = await stack.sqs.client.send(new ReceiveMessageCommand({ QueueUrl: stack.queues['interface-to-app'].dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 1, MessageAttributeNames: ['All'] }));
          return (res.Messages ?? []).some((m) => m.MessageAttributes?.['cr-envelope-id']?.StringValue === id);
        },
        { what: 'the submission in the DLQ', timeoutMs: 90_000 },
      );
      expect(failures()).toHaveLength(1);
      await waitFor(() => events.some((e) => e.submissionId === id && e.status === 'dead-lettered' && e.reasonCode === 'CR_ENVELOPE_EFFECT_FAILED'), { what: 'the dead-lettered event' });
    } finally {
      table.update = update;
    }
  }, 240_000);
});

describe('a chart update dead-lettered by redrive', () => {
  it('whose delivery failed on every receive: the app reads failed, dead-lettered, with the reason code (the interface knows the queue\'s maxReceiveCount)', async () => {
    const table = stack.iface.runtime.state;
    const update = table.update.bind(table);
    // The injected fault: the interface's state table refuses every delivery claim (transient, no CR code).
    table.update = (pk, change) => (pk.startsWith('emr#') ? Promise.reject(Object.assign(new Error('throttled'), { name: 'ProvisionedThroughputExceededException' })) : update(pk, change));
    try {
      const res = await stack.app.server.inject({ method: 'POST', url: '/v1/chart-updates', headers: { ...bearer(stack.tokens.writer), 'content-type': 'application/fhir+json' }, payload: '{"resourceType":"Observation"}' });
      expect(res.statusCode).toBe(202);
      const { id } = res.json() as { id: string };
      // maxReceiveCount 3 on the stack's queues.
      const view = await statusReaches(() => stack.app.server.inject({ method: 'GET', url: `/v1/chart-updates/${id}`, headers: bearer(stack.tokens.writer) }), 'failed', 90_000);
      expect(view.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'failed']);
      expect(view.reasonCode).toBe('CR_ENVELOPE_EFFECT_FAILED');
      const last = stack.logs.iface.entries().filter((e) => e.msg === 'failed on its last receive; SQS will dead-letter it' && e.envelopeId === id);
      expect(last).toHaveLength(1);
      expect(last[0]).toMatchObject({ receiveCount: 3 });
    } finally {
      table.update = update;
    }
  }, 240_000);
});

describe('no PHI outside the ciphertext', () => {
  it('the planted name appears in no log line, no audit line and no status answer', async () => {
    const audits = [await readFile(join(stack.dir, 'interface-audit.jsonl'), 'utf8'), await readFile(join(stack.dir, 'app-audit.jsonl'), 'utf8')];
    for (const text of [...stack.logs.iface.lines, ...stack.logs.app.lines, ...audits, JSON.stringify(events)]) expect(text).not.toContain('Quartermain');
  });
});

describe('receipts never trigger receipts', () => {
  it('an invalid receipt, authentically signed by the app, is quarantined at the interface and answered with nothing', async () => {
    const sentReceipts = () => stack.logs.iface.entries().filter((e) => e.msg === 'relayed' && e.kind === 'delivery.receipt').length;
    const before = sentReceipts();
    // The app may not report a delivery: the receipt is refused whatever it names.
    const bad = buildEnvelope({ kind: 'delivery.receipt', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/vnd.care-relay.receipt+json', body: JSON.stringify({ ref: '0190b9a4-0000-7000-8000-000000000001', status: 'delivered', at: new Date().toISOString() }) });
    const sealed = await seal(bad, stack.keys.app.own, stack.keys.app.peers);
    await stack.sqs.client.send(new SendMessageCommand({ QueueUrl: stack.queues['app-to-interface'].url, MessageBody: sealed.body, MessageAttributes: sealed.attributes, ...(stack.sqs.fifo ? { MessageGroupId: 'app-to-interface', MessageDeduplicationId: bad.id } : {}) }));
    await waitFor(() => stack.logs.iface.entries().some((e) => e.msg === 'quarantined' && e.envelopeId === bad.id && e.reason === 'CR_RECEIPT_INVALID'), { what: 'the invalid receipt quarantined' });
    expect(sentReceipts()).toBe(before);
  });
});
