// The whole relay on FIFO queues (QUEUE_FIFO=true), whatever TEST_QUEUE_FIFO says: relayed
// envelopes, quarantine copies, and the SMS redaction jobs, whose per-message delay FIFO
// queues refuse (regression: "redaction jobs sent to a .fifo queue without a MessageGroupId
// and with a per-message DelaySeconds").
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATUS_WEBHOOK_PATH } from '../../services/app/sms/send.ts';
import { hashId } from '../../services/core/log/logger.ts';
import { startFakeSignalWire, signCallback, type FakeSignalWire } from '../../services/devtools/signalwire/index.ts';
import { startTestSqs } from '../helpers/sqs.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const FHIR = (i: number) => JSON.stringify({ resourceType: 'Patient', id: `fifo-${i}`, name: [{ family: 'Testperson', given: ['Alvina'] }] });
const HL7 = 'MSH|^~\\&|APP|CARE|EMR|HOSP|202601011200||ORU^R01|77|P|2.5\rPID|1||MRN-112233||Testperson^Alvina\r';
const PUBLIC_BASE_URL = 'http://127.0.0.1:9';
const FALLBACK_SECONDS = 3;

let fake: FakeSignalWire;
let stack: TestStack;

beforeAll(async () => {
  fake = await startFakeSignalWire({ stepMs: 20 });
  // The fake posts no callbacks: the status jobs below come from callbacks the test signs itself.
  fake.callbacks.dropWhere(() => true);
  stack = await startStack({
    sqs: await startTestSqs({ fifo: true }),
    appEnv: {
      ...fake.serviceEnv(),
      PUBLIC_BASE_URL,
      REDACTION_FALLBACK_DELAY_SECONDS: String(FALLBACK_SECONDS),
      REDACTION_SENT_GRACE_SECONDS: '1',
    },
  });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  await fake?.stop();
});

function app(method: 'GET' | 'POST', url: string, token: string, payload?: unknown, headers: Record<string, string> = {}) {
  return stack.app.server.inject({ method, url, headers: { authorization: `Bearer ${token}`, ...headers }, ...(payload === undefined ? {} : { payload: payload as string }) });
}

async function sendSms(body: string): Promise<string> {
  const res = await app('POST', '/v1/messages', stack.tokens.messenger, { to: '+15551230001', body }, { 'content-type': 'application/json' });
  expect(res.statusCode).toBe(202);
  return (res.json() as { sid: string }).sid;
}

const redacted = (sid: string): boolean => fake.message(sid)?.body === '';

function redactionLogs(sid: string): Array<Record<string, unknown>> {
  const sidHash = hashId(stack.env.app.HMAC_KEY!, sid);
  return stack.logs.app.entries().filter((e) => e.msg === 'sms redacted' && e.sidHash === sidHash);
}

describe('FIFO queues end to end', () => {
  it('creates .fifo queues and the services resolve them as FIFO', () => {
    for (const q of Object.values(stack.queues)) {
      expect(q.url.endsWith('.fifo')).toBe(true);
      expect(q.fifo).toBe(true);
    }
  });

  it('relays submissions into the inbox (held together, not one at a time), acks them, and delivers a chart update to the EMR', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await stack.iface.server.inject({
        method: 'POST',
        url: '/v1/submissions',
        headers: { authorization: `Bearer ${stack.tokens.partner}`, 'content-type': 'application/fhir+json' },
        payload: FHIR(i),
      });
      expect(res.statusCode).toBe(202);
      ids.push((res.json() as { id: string }).id);
    }
    await waitFor(() => ids.every((id) => stack.app.inbox.get(id)), { what: 'all submissions in the inbox', timeoutMs: 20_000 });
    const listed = ((await app('GET', '/v1/inbox', stack.tokens.reader)).json() as { records: Array<{ id: string }> }).records.map((r) => r.id);
    expect(listed.filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());
    for (const id of ids) expect((await app('POST', `/v1/inbox/${id}/ack`, stack.tokens.reader)).json()).toEqual({ id, acked: true });
    await waitFor(() => stack.app.consumers[0]!.inFlightCount === 0, { what: 'acked messages deleted' });

    const update = await app('POST', '/v1/chart-updates', stack.tokens.writer, HL7, { 'content-type': 'application/hl7-v2' });
    expect(update.statusCode).toBe(202);
    const { id } = update.json() as { id: string };
    await waitFor(() => stack.sink.deliveries.get(id), { what: 'EMR delivery', timeoutMs: 20_000 });
  });

  it('chart updates naming a record (Ordering-Key) reach the EMR in the order accepted, per record, from any writer', async () => {
    const records = ['MRN-100200', 'MRN-300400', 'MRN-500600'];
    const accepted = new Map<string, string[]>(records.map((r) => [r, []]));
    for (let i = 0; i < 4; i++) {
      for (const record of records) {
        const res = await app('POST', '/v1/chart-updates', stack.tokens.writer, FHIR(100 + i), { 'content-type': 'application/fhir+json', 'ordering-key': record });
        expect(res.statusCode).toBe(202);
        accepted.get(record)!.push((res.json() as { id: string }).id);
      }
    }
    const all = [...accepted.values()].flat();
    await waitFor(() => all.every((id) => stack.sink.deliveries.has(id)), { what: 'every update at the EMR', timeoutMs: 30_000 });
    // The sink's map is in order of first delivery.
    const order = [...stack.sink.deliveries.keys()];
    for (const ids of accepted.values()) expect(ids.map((id) => order.indexOf(id))).toEqual(ids.map((id) => order.indexOf(id)).sort((a, b) => a - b));
    // The record's key never leaves the app: not in the interface's logs.
    expect(JSON.stringify(stack.logs.iface.entries())).not.toContain('MRN-100200');
  });

  it('copies a message it cannot accept to the FIFO quarantine queue (with a group and deduplication id)', async () => {
    const q = stack.queues['interface-to-app'];
    const id = randomUUID();
    await stack.sqs.client.send(
      new SendMessageCommand({
        QueueUrl: q.url,
        MessageBody: 'not an OpenPGP message',
        MessageAttributes: { 'cr-version': { DataType: 'String', StringValue: '1' }, 'cr-envelope-id': { DataType: 'String', StringValue: id } },
        MessageGroupId: id,
        MessageDeduplicationId: id,
      }),
    );
    const copy = await waitFor(
      async () => (await stack.sqs.client.send(new ReceiveMessageCommand({ QueueUrl: q.quarantineUrl, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }))).Messages?.[0],
      { what: 'quarantine copy', timeoutMs: 20_000 },
    );
    expect(copy.MessageAttributes?.['cr-envelope-id']?.StringValue).toBe(id);
    expect(copy.MessageAttributes?.['cr-reason']?.StringValue).toBe('CR_ENVELOPE_NOT_OPENPGP');
  });

  it('a lost callback still ends redacted: the fallback job waits its delay on the FIFO queue, then redacts', async () => {
    const sentAt = Date.now();
    const sid = await sendSms('synthetic reminder, callback lost');
    await waitFor(() => fake.message(sid)?.status === 'delivered', { what: 'delivered at the fake' });
    await waitFor(() => redacted(sid), { what: 'fallback redaction', timeoutMs: 30_000 });
    // Not before its delay: the job was held invisible until due, not handled at once.
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(FALLBACK_SECONDS * 1000 - 500);
    await waitFor(() => redactionLogs(sid).length > 0, { what: 'redaction log line' });
    expect(redactionLogs(sid)[0]).toMatchObject({ trigger: 'fallback' });
    expect(stack.logs.app.entries().filter((e) => e.msg === 'message not sent')).toEqual([]);
  });

  it('a status callback redacts at once, not held up by the same message\'s waiting fallback job', async () => {
    const sid = await sendSms('synthetic reminder, callback delivered');
    await waitFor(() => fake.message(sid)?.status === 'delivered', { what: 'delivered at the fake' });
    const params = { AccountSid: fake.projectId, MessageSid: sid, MessageStatus: 'delivered' };
    const res = await stack.app.server.inject({
      method: 'POST',
      url: STATUS_WEBHOOK_PATH,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-signalwire-signature': signCallback(fake.signingKey, PUBLIC_BASE_URL + STATUS_WEBHOOK_PATH, params) },
      payload: new URLSearchParams(params).toString(),
    });
    expect(res.statusCode).toBe(204);
    await waitFor(() => redactionLogs(sid).length > 0, { what: 'status redaction', timeoutMs: 20_000 });
    expect(redactionLogs(sid)[0]).toMatchObject({ trigger: 'status' });
    expect(redacted(sid)).toBe(true);
  });
});
