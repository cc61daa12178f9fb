import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope } from '../../services/core/envelope/envelope.ts';
import { seal } from '../../services/core/envelope/seal.ts';
import { generateServiceKey } from '../../services/core/keys/generate.ts';
import { ownKeyring } from '../../services/core/keys/keyring.ts';
import { fifoSendIds } from '../helpers/sqs.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { readTrail } from '../helpers/trail.ts';
import { waitFor } from '../helpers/wait.ts';
import { decryptKey, readPrivateKey } from 'openpgp';

const FHIR = JSON.stringify({ resourceType: 'Patient', id: 'p1', name: [{ family: 'Testperson', given: ['Alvina'] }] });
const HL7 = 'MSH|^~\\&|APP|CARE|EMR|HOSP|202601011200||ORU^R01|42|P|2.5\rPID|1||MRN-556677||Testperson^Alvina\r';

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function submit(body: string, headers: Record<string, string> = {}) {
  return stack.iface.server.inject({
    method: 'POST',
    url: '/v1/submissions',
    headers: { authorization: `Bearer ${stack.tokens.partner}`, 'content-type': 'application/fhir+json', ...headers },
    payload: body,
  });
}

function chartUpdate(body: string, headers: Record<string, string> = {}) {
  return stack.app.server.inject({
    method: 'POST',
    url: '/v1/chart-updates',
    headers: { authorization: `Bearer ${stack.tokens.writer}`, 'content-type': 'application/hl7-v2', ...headers },
    payload: body,
  });
}

function reader(url: string, method: 'GET' | 'POST' = 'GET') {
  return stack.app.server.inject({ method, url, headers: { authorization: `Bearer ${stack.tokens.reader}` } });
}

describe('partner → inbox → ack', () => {
  it('relays a submission into the inbox, serves it, and deletes it on ack', async () => {
    const res = await submit(FHIR);
    expect(res.statusCode).toBe(202);
    const { id } = res.json() as { id: string };

    await waitFor(() => stack.app.inbox.get(id), { what: 'record in inbox' });
    const list = await reader('/v1/inbox');
    expect(list.json().records.map((r: { id: string }) => r.id)).toContain(id);
    expect(JSON.stringify(list.json())).not.toContain('Testperson');

    const one = await reader(`/v1/inbox/${id}`);
    expect(one.statusCode).toBe(200);
    expect(one.headers['content-type']).toContain('application/fhir+json');
    expect(one.body).toBe(FHIR);

    const ack = await reader(`/v1/inbox/${id}/ack`, 'POST');
    expect(ack.json()).toEqual({ id, acked: true });
    // Deleted from SQS: nothing comes back after the visibility timeout.
    const inflight = stack.app.consumers[0]!;
    await waitFor(() => inflight.inFlightCount === 0, { what: 'message deleted' });
    expect((await reader(`/v1/inbox/${id}`)).statusCode).toBe(404);
  });

  it('answers the same id for a repeated Idempotency-Key and sends once', async () => {
    const key = `k-${Date.now()}`;
    const first = await submit(FHIR, { 'idempotency-key': key });
    const second = await submit(FHIR, { 'idempotency-key': key });
    expect(second.statusCode).toBe(202);
    expect(second.json().id).toBe(first.json().id);
    const conflict = await submit(JSON.stringify({ resourceType: 'Patient', id: 'other' }), { 'idempotency-key': key });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.headers['content-type']).toContain('application/problem+json');
    await waitFor(() => stack.app.inbox.get(first.json().id));
    stack.app.inbox.ack(first.json().id);
  });

  it('refuses what the partner may not send, with problem+json', async () => {
    const noAuth = await stack.iface.server.inject({ method: 'POST', url: '/v1/submissions', headers: { 'content-type': 'application/fhir+json' }, payload: FHIR });
    expect(noAuth.statusCode).toBe(401);
    const wrongType = await submit('hello', { 'content-type': 'text/plain' });
    expect(wrongType.statusCode).toBe(415);
    const malformed = await submit('{"not":"fhir"}');
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().code).toBe('CR_PAYLOAD_MALFORMED');
    const big = await submit(JSON.stringify({ resourceType: 'Binary', data: 'x'.repeat(1_100_000) }));
    expect(big.statusCode).toBe(413);
    expect(big.headers['content-type']).toContain('application/problem+json');
  });
});

describe('chart update → EMR', () => {
  it('delivers a chart update to the EMR sink once, with the envelope id as idempotency key', async () => {
    const res = await chartUpdate(HL7);
    expect(res.statusCode).toBe(202);
    const { id } = res.json() as { id: string };
    const delivery = await waitFor(() => stack.sink.deliveries.get(id), { what: 'EMR delivery' });
    expect(delivery.body.toString('utf8')).toBe(HL7);
    expect(delivery.contentType).toBe('application/hl7-v2');
    expect(delivery.attempts).toBe(1);
  });

  it('answers the same id for a repeated Idempotency-Key, also when concurrent, and delivers once; each retry answered from the claim writes its line again, marked copy', async () => {
    const key = `k-${randomUUID()}`;
    const [a, b] = await Promise.all([chartUpdate(HL7, { 'idempotency-key': key }), chartUpdate(HL7, { 'idempotency-key': key })]);
    expect([a.statusCode, b.statusCode]).toEqual([202, 202]);
    const { id } = a.json() as { id: string };
    expect(b.json().id).toBe(id);
    // Later, once the first was delivered: still the same id, nothing sent again.
    await waitFor(() => stack.sink.deliveries.get(id), { what: 'EMR delivery' });
    expect((await chartUpdate(HL7, { 'idempotency-key': key })).json().id).toBe(id);
    const conflict = await chartUpdate(HL7.replace('MRN-556677', 'MRN-000000'), { 'idempotency-key': key });
    expect(conflict.statusCode).toBe(409);
    // Sent once: one `message.relayed` line for it in the app's trail (the EMR side would dedupe a second copy anyway);
    // the two retries answered from the claim (one of the concurrent pair, and the later one) wrote it again, marked copy.
    const relayed = (await readTrail(stack.env.app.AUDIT_FILE!)).filter((l) => l.action === 'message.relayed' && l.resourceId === id);
    expect(relayed.map((l) => (l.details as { copy?: boolean } | undefined)?.copy ?? false)).toEqual([false, true, true]);
    expect(relayed[1]!.details).toEqual({ queue: 'app-to-interface', kind: 'chart.update', copy: true });
  });

  it('retries while the EMR fails and delivers once it recovers', async () => {
    stack.sink.setMode({ kind: 'fail', status: 503, count: 2 });
    const res = await chartUpdate(HL7);
    const { id } = res.json() as { id: string };
    const delivery = await waitFor(() => stack.sink.deliveries.get(id), { what: 'delivery after recovery', timeoutMs: 25_000 });
    expect(delivery.attempts).toBe(1);
    expect(stack.sink.requests.filter((r) => r.envelopeId === id).map((r) => r.status)).toEqual([503, 503, 200]);
  });

  it('dead-letters a chart update the EMR rejects permanently, with the reason', async () => {
    stack.sink.setMode({ kind: 'fail', status: 422, count: 1 });
    const res = await chartUpdate(HL7);
    const { id } = res.json() as { id: string };
    const dlq = stack.queues['app-to-interface'].dlqUrl;
    const got = await waitFor(
      async () => {
        const r = await stack.sqs.client.send(new ReceiveMessageCommand({ QueueUrl: dlq, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }));
        return r.Messages?.find((m) => m.MessageAttributes?.['cr-envelope-id']?.StringValue === id);
      },
      { what: 'message in DLQ' },
    );
    expect(got.MessageAttributes?.['cr-reason']?.StringValue).toBe('CR_EMR_HTTP_422');
    expect(stack.sink.deliveries.has(id)).toBe(false);
  });
});

describe('hostile messages on the queue', () => {
  it('quarantines a message signed by an unpinned key and never puts it in the inbox', async () => {
    const impostorKey = await generateServiceKey({ service: 'interface', passphrase: 'impostor-pass' });
    const decrypted = await decryptKey({ privateKey: await readPrivateKey({ armoredKey: impostorKey.privateKey }), passphrase: 'impostor-pass' });
    const envelope = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', contentType: 'application/fhir+json', body: FHIR });
    const sealed = await seal(envelope, ownKeyring(decrypted), stack.keys.interface.peers);
    await stack.sqs.client.send(new SendMessageCommand({ QueueUrl: stack.queues['interface-to-app'].url, MessageBody: sealed.body, MessageAttributes: sealed.attributes, ...fifoSendIds(stack.sqs, randomUUID()) }));
    const quarantined = await waitFor(
      async () => {
        const r = await stack.sqs.client.send(new ReceiveMessageCommand({ QueueUrl: stack.queues['interface-to-app'].quarantineUrl, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }));
        return r.Messages?.find((m) => m.MessageAttributes?.['cr-envelope-id']?.StringValue === envelope.id);
      },
      { what: 'quarantined message' },
    );
    expect(quarantined.MessageAttributes?.['cr-reason']?.StringValue).toBe('CR_ENVELOPE_SIGNER_NOT_PINNED');
    expect(quarantined.Body).toBe(sealed.body);
    expect(stack.app.inbox.get(envelope.id)).toBeUndefined();
  });

  it('quarantines a tampered message', async () => {
    const envelope = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', contentType: 'application/fhir+json', body: FHIR });
    const sealed = await seal(envelope, stack.keys.interface.own, stack.keys.interface.peers);
    const lines = sealed.body.split('\n');
    const i = Math.floor(lines.length / 2);
    lines[i] = lines[i]!.replace(/[A-Za-z]/, (c) => (c === 'A' ? 'B' : 'A'));
    await stack.sqs.client.send(new SendMessageCommand({ QueueUrl: stack.queues['interface-to-app'].url, MessageBody: lines.join('\n'), MessageAttributes: sealed.attributes, ...fifoSendIds(stack.sqs, randomUUID()) }));
    const quarantined = await waitFor(
      async () => {
        const r = await stack.sqs.client.send(new ReceiveMessageCommand({ QueueUrl: stack.queues['interface-to-app'].quarantineUrl, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }));
        return r.Messages?.find((m) => m.MessageAttributes?.['cr-envelope-id']?.StringValue === envelope.id);
      },
      { what: 'quarantined tampered message' },
    );
    expect(quarantined.MessageAttributes?.['cr-reason']?.StringValue).toMatch(/^CR_ENVELOPE_/);
    expect(stack.app.inbox.get(envelope.id)).toBeUndefined();
  });

  it('applies a duplicated message once', async () => {
    const envelope = buildEnvelope({ kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/hl7-v2', body: HL7 });
    const sealed = await seal(envelope, stack.keys.app.own, stack.keys.app.peers);
    const send = () => stack.sqs.client.send(new SendMessageCommand({ QueueUrl: stack.queues['app-to-interface'].url, MessageBody: sealed.body, MessageAttributes: sealed.attributes, ...fifoSendIds(stack.sqs, 'app-to-interface') }));
    await send();
    await waitFor(() => stack.sink.deliveries.get(envelope.id), { what: 'first delivery' });
    await send();
    await waitFor(async () => (await stack.iface.server.inject({ method: 'GET', url: '/metrics' })).body.match(/messages_duplicate_total\{[^}]*queue="app-to-interface"[^}]*\} [1-9]/), { what: 'duplicate metric' });
    expect(stack.sink.deliveries.get(envelope.id)!.attempts).toBe(1);
    expect(stack.sink.requests.filter((r) => r.envelopeId === envelope.id)).toHaveLength(1);
  });
});
