import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope, type Envelope } from '../../../services/core/envelope/envelope.ts';
import { EnvelopeError } from '../../../services/core/envelope/errors.ts';
import { open } from '../../../services/core/envelope/open.ts';
import { seal } from '../../../services/core/envelope/seal.ts';
import { uuidv7 } from '../../../services/core/envelope/uuidv7.ts';
import { encodeReceipt, parseReceipts, RECEIPT_CONTENT_TYPE, RECEIPT_KIND, type Receipt } from '../../../services/core/receipts/receipt.ts';
import { createReceiptSender, receiptEffect } from '../../../services/core/receipts/receipts.ts';
import { AuditError } from '../../../services/core/audit/errors.ts';
import type { AuditEvent } from '../../../services/core/audit/types.ts';
import { createInboundHandler, type RejectedEnvelope } from '../../../services/core/relay/inbound.ts';
import { localCrypto } from '../../../services/core/relay/crypto.ts';
import type { OutboundPayload } from '../../../services/core/relay/outbound.ts';
import { createStatusStore } from '../../../services/core/state/statusStore.ts';
import type { StateTable } from '../../../services/core/state/table.ts';
import type { ReceivedMessage } from '../../../services/core/transport/consumer.ts';
import { captureLogger } from '../../helpers/logs.ts';
import { auditedReceiptEffect } from '../../helpers/receipts.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';
import { openTestStateTable, startTestSqs, type TestSqs } from '../../helpers/sqs.ts';
import { appContext } from '../envelope/craft.ts';

let keys: TestServiceKeyPair;
let backend: TestSqs;
let table: StateTable;
beforeAll(async () => {
  keys = await makeServiceKeyPair();
  backend = await startTestSqs();
  table = openTestStateTable(backend, 'app');
});
afterAll(async () => {
  await table.close();
  await backend.stop();
  await keys.cleanup();
});

/** A receipt envelope as a sender builds it. */
function receiptEnvelope(receipt: Receipt | Record<string, unknown>, from: 'app' | 'interface' = 'interface', extra: Partial<Parameters<typeof buildEnvelope>[0]> = {}): Envelope {
  const to = from === 'app' ? 'interface' : 'app';
  return buildEnvelope({ kind: RECEIPT_KIND, from, to, queue: `${from}-to-${to}`, contentType: RECEIPT_CONTENT_TYPE, body: JSON.stringify(receipt), ...extra });
}

const PHI = 'Jane Q. Sentinel-Patient 1957-03-14';

/** The one receipt an envelope carries, known by the envelope's own id; undefined when it is refused. */
function parseReceipt(envelope: Envelope): Receipt | undefined {
  const carried = parseReceipts(envelope);
  if (!carried) return undefined;
  expect(carried).toHaveLength(1);
  expect(carried[0]!.id).toBe(envelope.id);
  return carried[0]!.receipt;
}

/** A status record `accepted` by a writer, and the receipt effect that applies `delivered` receipts to it, auditing into `audit`. */
async function storeBackedEffect() {
  const known = uuidv7();
  const store = createStatusStore<'accepted' | 'delivered'>({ table, prefix: 'receipt-test', ranks: { accepted: 0, delivered: 1 }, ttlSeconds: 3600 });
  await store.begin(known, 'writer', 'accepted');
  const { effect, audit } = auditedReceiptEffect(table, (r, _from, receiptId) => store.record(r.ref, 'delivered', {}, new Date(r.at), receiptId));
  return { known, store, audit, effect };
}

describe('delivery receipts', () => {
  it('a receipt sealed by the interface opens on the app to the same ids and codes, and carries nothing else', async () => {
    const receipt: Receipt = { ref: uuidv7(), status: 'delivered', at: new Date().toISOString(), emrStatus: 201 };
    const envelope = receiptEnvelope(JSON.parse(encodeReceipt(receipt)) as Receipt);
    const sealed = await seal(envelope, keys.interface.own, keys.interface.peers);
    const opened = await open(sealed.body, appContext(keys.app, { queue: 'interface-to-app' }));
    expect(parseReceipt(opened)).toEqual(receipt);
    expect(Object.keys(JSON.parse(opened.body) as object).sort()).toEqual(['at', 'emrStatus', 'ref', 'status']);
    expect(opened.partner).toBeUndefined();
  });

  it('refuses a receipt with an extra field (no room for PHI), a status its sender may not report, or a reason code outside CR_*', () => {
    const base = { ref: uuidv7(), at: new Date().toISOString() };
    expect(parseReceipt(receiptEnvelope({ ...base, status: 'delivered', note: PHI }))).toBeUndefined();
    // The app cannot claim an EMR delivery, nor the interface an inbox ack.
    expect(parseReceipt(receiptEnvelope({ ...base, status: 'delivered' }, 'app'))).toBeUndefined();
    expect(parseReceipt(receiptEnvelope({ ...base, status: 'acknowledged' }, 'interface'))).toBeUndefined();
    expect(parseReceipt(receiptEnvelope({ ...base, status: 'failed', reasonCode: PHI }))).toBeUndefined();
    expect(parseReceipt(receiptEnvelope({ ...base, status: 'failed' }))).toBeUndefined();
    expect(parseReceipt(receiptEnvelope({ ...base, status: 'held', reasonCode: 'CR_X' }, 'app'))).toBeUndefined();
    expect(parseReceipt(receiptEnvelope({ ...base, status: 'held' }, 'app', { contentType: 'application/json' }))).toBeUndefined();
    expect(parseReceipt(receiptEnvelope({ ...base, status: 'held' }, 'app'))).toEqual({ ...base, status: 'held' });
    expect(parseReceipt(receiptEnvelope({ ...base, status: 'rejected', reasonCode: 'CR_ENVELOPE_TOO_OLD', disposition: 'quarantined' }, 'app'))).toMatchObject({ status: 'rejected' });
  });

  it('a refused envelope whose signature verified names its signed id and kind; one from an unpinned signer names nothing', async () => {
    const old = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', partner: 'acme', contentType: 'application/fhir+json', body: '{}' }, new Date(Date.now() - 10 * 86_400_000));
    const sealed = await seal(old, keys.interface.own, keys.interface.peers);
    const err = await open(sealed.body, appContext(keys.app)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvelopeError);
    expect((err as EnvelopeError).code).toBe('CR_ENVELOPE_TOO_OLD');
    expect((err as EnvelopeError).attributed).toEqual({ id: old.id, kind: 'care.submission' });

    // Signed by the app itself (not a pinned peer of the app): nothing about it can be believed.
    const forged = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', contentType: 'application/fhir+json', body: '{}' });
    const unpinned = await seal(forged, keys.app.own, keys.interface.peers);
    const err2 = await open(unpinned.body, appContext(keys.app)).catch((e: unknown) => e);
    expect((err2 as EnvelopeError).code).toBe('CR_ENVELOPE_SIGNER_NOT_PINNED');
    expect((err2 as EnvelopeError).attributed).toBeUndefined();
  });

  it('the inbound handler reports an authentic refused submission (for its rejection receipt), never an unattributable one', async () => {
    const rejected: RejectedEnvelope[] = [];
    const crypto = localCrypto(keys.app, { self: 'app', maxSkewMs: 60_000, maxAgeMs: 4 * 86_400_000 });
    const handler = createInboundHandler({ crypto, queue: 'interface-to-app', effects: {}, service: 'app', onRejected: (r) => rejected.push(r) });
    const message = (body: string, id: string): ReceivedMessage => ({
      messageId: 'm',
      body,
      attributes: { 'cr-version': { DataType: 'String', StringValue: '1' }, 'cr-envelope-id': { DataType: 'String', StringValue: id }, 'cr-signer': { DataType: 'String', StringValue: keys.interface.fingerprint } },
      envelopeId: id,
      receiveCount: 1,
      sentAt: undefined,
      queue: 'interface-to-app',
    });
    const wrongQueue = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'app-to-interface', partner: 'acme', contentType: 'application/fhir+json', body: '{}' });
    const sealed = await seal(wrongQueue, keys.interface.own, keys.interface.peers);
    expect(await handler(message(sealed.body, wrongQueue.id), new AbortController().signal)).toEqual({ status: 'quarantine', reason: 'CR_ENVELOPE_WRONG_QUEUE' });
    expect(rejected).toEqual([{ id: wrongQueue.id, kind: 'care.submission', reason: 'CR_ENVELOPE_WRONG_QUEUE', disposition: 'quarantined' }]);
    await handler(message('garbage', wrongQueue.id), new AbortController().signal);
    expect(rejected).toHaveLength(1);
    await crypto.close();
  });

  it('the receipt effect applies a receipt once (a second copy is a duplicate, audited as a copy), audits an unknown id without an error, quarantines an invalid one', async () => {
    const { known, audit, effect } = await storeBackedEffect();
    const signal = new AbortController().signal;
    const msg = {} as ReceivedMessage;
    const receipt = receiptEnvelope({ ref: known, status: 'delivered', at: new Date().toISOString(), emrStatus: 200 });
    expect(await effect(receipt, msg, signal)).toEqual({ status: 'done' });
    expect(await effect(receipt, msg, signal)).toEqual({ status: 'duplicate' });
    expect(audit.map((e) => [e.action, e.details])).toEqual([
      ['receipt.applied', { receiptId: receipt.id, status: 'delivered', change: 'moved' }],
      ['receipt.applied', { receiptId: receipt.id, status: 'delivered', change: 'unchanged', copy: true }],
    ]);
    expect(audit[0]).toMatchObject({ resourceId: known });
    // The step that the receipt wrote remembers it: no item of its own.
    expect(await table.get(`receipt#${receipt.id}`)).toBeUndefined();

    // Another receipt of a step already recorded (a resent one) is applied, unchanged, once.
    const resent = receiptEnvelope({ ref: known, status: 'delivered', at: new Date().toISOString(), emrStatus: 200 });
    expect(await effect(resent, msg, signal)).toEqual({ status: 'done' });
    expect(audit.at(-1)).toMatchObject({ action: 'receipt.applied', details: { change: 'unchanged', receiptId: resent.id } });
    expect(audit.at(-1)!.details).not.toHaveProperty('copy');
    expect(await effect(resent, msg, signal)).toEqual({ status: 'duplicate' });
    expect(audit.at(-1)).toMatchObject({ action: 'receipt.applied', details: { change: 'unchanged', receiptId: resent.id, copy: true } });

    const stray = receiptEnvelope({ ref: uuidv7(), status: 'failed', reasonCode: 'CR_EMR_HTTP_400', disposition: 'dead-lettered', at: new Date().toISOString() });
    expect(await effect(stray, msg, signal)).toEqual({ status: 'done' });
    expect(audit.at(-1)).toMatchObject({ action: 'receipt.unknown', outcome: 'failure', details: { reason: 'CR_RECEIPT_UNKNOWN_REF' } });
    expect(audit.at(-1)!.details).not.toHaveProperty('copy');
    expect(await effect(stray, msg, signal)).toEqual({ status: 'duplicate' });
    expect(audit.at(-1)).toMatchObject({ action: 'receipt.unknown', outcome: 'failure', details: { reason: 'CR_RECEIPT_UNKNOWN_REF', copy: true } });
    expect(audit).toHaveLength(6);

    const invalid = receiptEnvelope({ ref: uuidv7(), status: 'delivered', at: new Date().toISOString(), patient: PHI });
    expect(await effect(invalid, msg, signal)).toEqual({ status: 'quarantine', reason: 'CR_RECEIPT_INVALID' });
    expect(JSON.stringify(audit)).not.toContain(PHI);
  });

  it('a second copy of a receipt applied before its id was kept with the step (a `receipt#` item, an existing table) is still a duplicate', async () => {
    const { known, store, audit, effect } = await storeBackedEffect();
    const receipt = receiptEnvelope({ ref: known, status: 'delivered', at: new Date().toISOString(), emrStatus: 200 });
    // As the earlier code left it: the step without the receipt's id, and the receipt's own item.
    await store.record(known, 'delivered', {}, new Date());
    await table.put({ pk: `receipt#${receipt.id}`, ref: known, ttl: Math.floor(Date.now() / 1000) + 3600 });
    expect(await effect(receipt, {} as ReceivedMessage, new AbortController().signal)).toEqual({ status: 'duplicate' });
    expect(audit.map((e) => [e.action, e.details])).toEqual([['receipt.applied', { receiptId: receipt.id, status: 'delivered', change: 'unchanged', copy: true }]]);
  });

  it('a receipt whose step was written but whose audit line was not (a crash or a failed write between): its copy writes the line, marked copy', async () => {
    for (const ref of ['known', 'unknown'] as const) {
      const known = uuidv7();
      const store = createStatusStore<'accepted' | 'delivered'>({ table, prefix: 'receipt-test', ranks: { accepted: 0, delivered: 1 }, ttlSeconds: 3600 });
      await store.begin(known, 'writer', 'accepted');
      const lines: AuditEvent[] = [];
      let failNext = true;
      const audit = { record: async (e: AuditEvent) => {
        if (failNext) {
          failNext = false;
          throw new AuditError('CR_AUDIT_WRITE_FAILED', 'the trail could not be written');
        }
        lines.push(e);
      } };
      const effect = receiptEffect({ table, ttlSeconds: 3600, audit, service: 'app', logger: captureLogger('app').logger, apply: (r, _from, receiptId) => store.record(r.ref, 'delivered', {}, new Date(r.at), receiptId) });
      const receipt = receiptEnvelope({ ref: ref === 'known' ? known : uuidv7(), status: 'delivered', at: new Date().toISOString(), emrStatus: 200 });
      const signal = new AbortController().signal;
      await expect(effect(receipt, {} as ReceivedMessage, signal)).rejects.toThrow(AuditError);
      expect(lines).toEqual([]);
      // The step (or the receipt's own item) is written: SQS delivers the envelope again.
      if (ref === 'known') expect((await store.get(known))!.status).toBe('delivered');
      else expect(await table.get(`receipt#${receipt.id}`)).toBeDefined();
      expect(await effect(receipt, {} as ReceivedMessage, signal)).toEqual({ status: 'duplicate' });
      expect(lines.map((e) => [e.action, e.resourceId, e.details])).toEqual([
        ref === 'known'
          ? ['receipt.applied', known, { receiptId: receipt.id, status: 'delivered', change: 'unchanged', copy: true }]
          : ['receipt.unknown', JSON.parse(receipt.body).ref, { receiptId: receipt.id, status: 'delivered', reason: 'CR_RECEIPT_UNKNOWN_REF', copy: true }],
      ]);
    }
  });

  it('the receipt sender never throws: it says whether SQS took the receipt; a failed send is logged with ids and codes only', async () => {
    const log = captureLogger('app');
    const sent: OutboundPayload[] = [];
    const ok = createReceiptSender({ outbound: { send: async (p) => (sent.push(p), uuidv7()) }, service: 'app', logger: log.logger });
    const ref = uuidv7();
    expect(await ok.send({ ref, status: 'held' })).toBe(true);
    expect(sent[0]).toMatchObject({ kind: RECEIPT_KIND, contentType: RECEIPT_CONTENT_TYPE, bodyEncoding: 'utf8', actor: 'app' });
    expect(JSON.parse(sent[0]!.body.toString('utf8'))).toMatchObject({ ref, status: 'held' });
    expect(sent[0]!.partner).toBeUndefined();
    const failing = createReceiptSender({ outbound: { send: async () => Promise.reject(Object.assign(new Error('SQS down'), { code: 'CR_TRANSPORT_SEND_FAILED' })) }, service: 'app', logger: log.logger });
    await expect(failing.send({ ref, status: 'acknowledged' }), 'says it was not sent, never throws').resolves.toBe(false);
    expect(log.entries().at(-1)).toMatchObject({ msg: 'receipt could not be sent', envelopeId: ref, status: 'acknowledged', code: 'CR_TRANSPORT_SEND_FAILED' });
  });
});
