// Several receipts in one envelope (docs/wire-format.md, "Kind delivery.receipt"): what a sender
// puts together, what a receiver accepts, and how each receipt is applied once.
import { describe, expect, it } from 'vitest';
import { buildEnvelope, type Envelope } from '../../../services/core/envelope/envelope.ts';
import { uuidv7 } from '../../../services/core/envelope/uuidv7.ts';
import { DEFAULT_RECEIPT_LINGER_MS, encodeReceipts, MAX_RECEIPTS_PER_ENVELOPE, parseReceipts, RECEIPT_CONTENT_TYPE, RECEIPT_KIND, RECEIPTS_CONTENT_TYPE, type Receipt } from '../../../services/core/receipts/receipt.ts';
import { createReceiptSender } from '../../../services/core/receipts/receipts.ts';
import type { OutboundPayload } from '../../../services/core/relay/outbound.ts';
import { createStatusStore } from '../../../services/core/state/statusStore.ts';
import type { ReceivedMessage } from '../../../services/core/transport/consumer.ts';
import { captureLogger } from '../../helpers/logs.ts';
import { auditedReceiptEffect } from '../../helpers/receipts.ts';
import { useTestStateTable } from '../../helpers/sqs.ts';

const state = useTestStateTable('app');

const PHI = 'Jane Q. Sentinel-Patient 1957-03-14';
const at = (): string => new Date().toISOString();

/** An envelope from the interface carrying `body` as several receipts. */
function batchEnvelope(body: unknown, from: 'app' | 'interface' = 'interface'): Envelope {
  const to = from === 'app' ? 'interface' : 'app';
  return buildEnvelope({ kind: RECEIPT_KIND, from, to, queue: `${from}-to-${to}`, contentType: RECEIPTS_CONTENT_TYPE, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

const delivered = (ref: string): Receipt => ({ ref, status: 'delivered', at: at(), emrStatus: 200 });

describe('several receipts in one envelope', () => {
  it('reads them in order, each known by `<envelope id>.<index>`', () => {
    const receipts = [delivered(uuidv7()), { ref: uuidv7(), status: 'failed', at: at(), reasonCode: 'CR_EMR_HTTP_400', disposition: 'dead-lettered' } as Receipt, delivered(uuidv7())];
    const envelope = batchEnvelope(encodeReceipts(receipts));
    const carried = parseReceipts(envelope);
    expect(carried?.map((c) => c.id)).toEqual([`${envelope.id}.0`, `${envelope.id}.1`, `${envelope.id}.2`]);
    expect(carried?.map((c) => c.receipt)).toEqual(receipts);
  });

  it('refuses the whole envelope when one receipt is bad, and a list of fewer than 2 or more than 100', () => {
    const good = delivered(uuidv7());
    expect(parseReceipts(batchEnvelope({ receipts: [good, { ...delivered(uuidv7()), note: PHI }] }))).toBeUndefined();
    expect(parseReceipts(batchEnvelope({ receipts: [good, { ...delivered(uuidv7()), status: 'acknowledged' }] })), 'a status the interface may not report').toBeUndefined();
    expect(parseReceipts(batchEnvelope({ receipts: [good, good] }, 'app')), "the app cannot report EMR deliveries").toBeUndefined();
    expect(parseReceipts(batchEnvelope({ receipts: [good] }))).toBeUndefined();
    expect(parseReceipts(batchEnvelope({ receipts: [] }))).toBeUndefined();
    expect(parseReceipts(batchEnvelope({ receipts: Array.from({ length: MAX_RECEIPTS_PER_ENVELOPE + 1 }, () => good) }))).toBeUndefined();
    expect(parseReceipts(batchEnvelope({ receipts: [good, good], note: PHI }))).toBeUndefined();
    expect(parseReceipts(batchEnvelope('{"receipts":[{"ref"'))).toBeUndefined();
    expect(parseReceipts(batchEnvelope([good, good]))).toBeUndefined();
    // The content type decides the shape: one receipt's body under the plural type, or the reverse, is refused.
    expect(parseReceipts(batchEnvelope(good))).toBeUndefined();
    expect(parseReceipts(buildEnvelope({ kind: RECEIPT_KIND, from: 'interface', to: 'app', queue: 'interface-to-app', contentType: RECEIPT_CONTENT_TYPE, body: encodeReceipts([good, good]) }))).toBeUndefined();
    expect(parseReceipts(batchEnvelope({ receipts: Array.from({ length: MAX_RECEIPTS_PER_ENVELOPE }, () => good) }))).toHaveLength(MAX_RECEIPTS_PER_ENVELOPE);
    expect(() => encodeReceipts([good])).toThrow(RangeError);
  });

  it('applies each receipt once: a second copy of the envelope is a duplicate; an unknown id is audited; an invalid envelope changes nothing', async () => {
    const store = createStatusStore<'accepted' | 'delivered'>({ table: state.table, prefix: 'batch-test', ranks: { accepted: 0, delivered: 1 }, ttlSeconds: 3600 });
    const [a, b, unknown] = [uuidv7(), uuidv7(), uuidv7()];
    await store.begin(a, 'writer', 'accepted');
    await store.begin(b, 'writer', 'accepted');
    const { effect, audit } = auditedReceiptEffect(state.table, (r, _from, id) => store.record(r.ref, 'delivered', {}, new Date(r.at), id));
    const msg = {} as ReceivedMessage;
    const signal = new AbortController().signal;

    const invalid = batchEnvelope({ receipts: [delivered(a), { ...delivered(b), note: PHI }] });
    expect(await effect(invalid, msg, signal)).toEqual({ status: 'quarantine', reason: 'CR_RECEIPT_INVALID' });
    expect((await store.get(a))?.status).toBe('accepted');

    const envelope = batchEnvelope({ receipts: [delivered(a), delivered(unknown), delivered(b)] });
    expect(await effect(envelope, msg, signal)).toEqual({ status: 'done' });
    expect((await store.get(a))?.status).toBe('delivered');
    expect((await store.get(b))?.status).toBe('delivered');
    expect(audit.map((e) => [e.action, e.resourceId, e.details?.receiptId]).sort()).toEqual(
      [
        ['receipt.applied', a, `${envelope.id}.0`],
        ['receipt.unknown', unknown, `${envelope.id}.1`],
        ['receipt.applied', b, `${envelope.id}.2`],
      ].sort(),
    );
    // The copy changes nothing; each of its receipts is audited again, marked `copy`.
    expect(await effect(envelope, msg, signal)).toEqual({ status: 'duplicate' });
    expect(audit.slice(3).map((e) => [e.action, e.resourceId, e.details?.receiptId, e.details?.copy]).sort()).toEqual(
      [
        ['receipt.applied', a, `${envelope.id}.0`, true],
        ['receipt.unknown', unknown, `${envelope.id}.1`, true],
        ['receipt.applied', b, `${envelope.id}.2`, true],
      ].sort(),
    );
    expect((await store.get(a))?.status).toBe('delivered');
    expect(JSON.stringify(audit)).not.toContain(PHI);
  });

  it('when one receipt cannot be applied the envelope fails; received again, only that one is applied (the others audited as copies)', async () => {
    const store = createStatusStore<'accepted' | 'delivered'>({ table: state.table, prefix: 'batch-retry', ranks: { accepted: 0, delivered: 1 }, ttlSeconds: 3600 });
    const refs = [uuidv7(), uuidv7(), uuidv7()];
    for (const ref of refs) await store.begin(ref, 'writer', 'accepted');
    let failOnce = refs[1];
    const { effect, audit } = auditedReceiptEffect(state.table, async (r, _from, id) => {
      if (r.ref === failOnce) {
        failOnce = undefined;
        throw Object.assign(new Error('throttled'), { name: 'ProvisionedThroughputExceededException' });
      }
      return store.record(r.ref, 'delivered', {}, new Date(r.at), id);
    });
    const envelope = batchEnvelope({ receipts: refs.map(delivered) });
    await expect(effect(envelope, {} as ReceivedMessage, new AbortController().signal)).rejects.toThrow('throttled');
    expect(audit.map((e) => e.resourceId).sort()).toEqual([refs[0], refs[2]].sort());
    expect(await effect(envelope, {} as ReceivedMessage, new AbortController().signal)).toEqual({ status: 'done' });
    const again = audit.slice(2);
    expect(again.filter((e) => e.details?.copy !== true).map((e) => [e.resourceId, e.details?.change])).toEqual([[refs[1], 'moved']]);
    expect(again.filter((e) => e.details?.copy === true).map((e) => [e.resourceId, e.details?.change]).sort()).toEqual([[refs[0], 'unchanged'], [refs[2], 'unchanged']].sort());
    for (const ref of refs) expect((await store.get(ref))?.status).toBe('delivered');
  });

  it('receipts of one envelope about the same envelope are applied in their order', async () => {
    const store = createStatusStore<'accepted' | 'held' | 'acknowledged'>({ table: state.table, prefix: 'batch-order', ranks: { accepted: 0, held: 1, acknowledged: 2 }, ttlSeconds: 3600 });
    const ref = uuidv7();
    await store.begin(ref, 'partner', 'accepted');
    const applied: string[] = [];
    const { effect } = auditedReceiptEffect(
      state.table,
      async (r, _from, id) => {
        applied.push(r.status);
        return store.record(r.ref, r.status as 'held' | 'acknowledged', {}, new Date(r.at), id);
      },
      'interface',
    );
    const envelope = batchEnvelope({ receipts: [{ ref, status: 'held', at: at() }, { ref, status: 'acknowledged', at: at() }] }, 'app');
    expect(await effect(envelope, {} as ReceivedMessage, new AbortController().signal)).toEqual({ status: 'done' });
    expect(applied).toEqual(['held', 'acknowledged']);
    expect((await store.get(ref))?.status).toBe('acknowledged');
  });
});

describe('the receipt sender', () => {
  /** An outbound path that records what it is given and answers when released. */
  function gatedOutbound() {
    const sent: OutboundPayload[] = [];
    const gates: (() => void)[] = [];
    return {
      sent,
      release: () => gates.splice(0).forEach((g) => g()),
      waiting: () => gates.length,
      outbound: {
        send: (p: OutboundPayload) =>
          new Promise<string>((resolve) => {
            sent.push(p);
            gates.push(() => resolve(uuidv7()));
          }),
      },
    };
  }
  const receiptsOf = (p: OutboundPayload): Receipt[] => {
    const body = JSON.parse(p.body.toString('utf8')) as Receipt | { receipts: Receipt[] };
    return 'receipts' in body ? body.receipts : [body];
  };
  const until = async (check: () => boolean): Promise<void> => {
    while (!check()) await new Promise((r) => setImmediate(r));
  };

  it('sends one receipt alone, at once; the ones given while an envelope is on its way go together in the next', async () => {
    const out = gatedOutbound();
    const sender = createReceiptSender({ outbound: out.outbound, service: 'app', logger: captureLogger('app').logger });
    const refs = Array.from({ length: 6 }, () => uuidv7());
    const first = sender.send({ ref: refs[0]!, status: 'held' });
    await until(() => out.waiting() === 1);
    expect(out.sent[0]).toMatchObject({ kind: RECEIPT_KIND, contentType: RECEIPT_CONTENT_TYPE, actor: 'app' });
    const rest = refs.slice(1).map((ref) => sender.send({ ref, status: 'acknowledged' }));
    // Nothing more is sent while the first envelope is on its way.
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(out.sent).toHaveLength(1);
    out.release();
    expect(await first).toBe(true);
    await until(() => out.waiting() === 1);
    expect(out.sent).toHaveLength(2);
    expect(out.sent[1]).toMatchObject({ kind: RECEIPT_KIND, contentType: RECEIPTS_CONTENT_TYPE, bodyEncoding: 'utf8', actor: 'app' });
    expect(receiptsOf(out.sent[1]!).map((r) => [r.ref, r.status])).toEqual(refs.slice(1).map((ref) => [ref, 'acknowledged']));
    expect(out.sent[1]!.partner).toBeUndefined();
    out.release();
    expect(await Promise.all(rest)).toEqual([true, true, true, true, true]);
  });

  it('puts at most `maxPerEnvelope` (at most 100) in one envelope; 1 sends each on its own', async () => {
    const out = gatedOutbound();
    const sender = createReceiptSender({ outbound: out.outbound, service: 'interface', logger: captureLogger('interface').logger, maxPerEnvelope: 1000 });
    const all = Array.from({ length: 250 }, () => sender.send({ ref: uuidv7(), status: 'delivered', emrStatus: 200 }));
    for (let i = 0; i < 3; i++) {
      await until(() => out.waiting() === 1);
      out.release();
    }
    expect(await Promise.all(all)).toEqual(all.map(() => true));
    expect(out.sent.map((p) => receiptsOf(p).length)).toEqual([100, 100, 50]);

    const single = gatedOutbound();
    const one = createReceiptSender({ outbound: single.outbound, service: 'interface', logger: captureLogger('interface').logger, maxPerEnvelope: 1 });
    const three = [uuidv7(), uuidv7(), uuidv7()].map((ref) => one.send({ ref, status: 'delivered', emrStatus: 200 }));
    for (let i = 0; i < 3; i++) {
      await until(() => single.waiting() === 1);
      single.release();
    }
    expect(await Promise.all(three)).toEqual([true, true, true]);
    expect(single.sent.map((p) => p.contentType)).toEqual([RECEIPT_CONTENT_TYPE, RECEIPT_CONTENT_TYPE, RECEIPT_CONTENT_TYPE]);
  });

  it('a best-effort receipt (`linger`) waits out `lingerMs` and leaves sooner only with a receipt about the same envelope; once the wait is over, those waiting go together', async () => {
    const out = gatedOutbound();
    const patient = createReceiptSender({ outbound: out.outbound, service: 'app', logger: captureLogger('app').logger, lingerMs: 60_000 });
    const [a, b, c] = [uuidv7(), uuidv7(), uuidv7()];
    const heldA = patient.send({ ref: a, status: 'held' }, { linger: true });
    const heldB = patient.send({ ref: b, status: 'held' }, { linger: true });
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(out.sent, 'nothing goes before the wait is over or a receipt about the same envelope comes').toHaveLength(0);
    // A receipt about another envelope goes at once, alone.
    const ackC = patient.send({ ref: c, status: 'acknowledged' });
    await until(() => out.waiting() === 1);
    expect(receiptsOf(out.sent[0]!).map((r) => [r.ref, r.status])).toEqual([[c, 'acknowledged']]);
    out.release();
    expect(await ackC).toBe(true);
    // The one about `a` takes a's `held` with it, in their order; b's still waits.
    const ackA = patient.send({ ref: a, status: 'acknowledged' });
    await until(() => out.waiting() === 1);
    expect(receiptsOf(out.sent[1]!).map((r) => [r.ref, r.status])).toEqual([
      [a, 'held'],
      [a, 'acknowledged'],
    ]);
    out.release();
    expect(await Promise.all([heldA, ackA])).toEqual([true, true]);
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(out.sent).toHaveLength(2);
    const ackB = patient.send({ ref: b, status: 'acknowledged' });
    await until(() => out.waiting() === 1);
    expect(receiptsOf(out.sent[2]!).map((r) => r.ref)).toEqual([b, b]);
    out.release();
    expect(await Promise.all([heldB, ackB])).toEqual([true, true]);

    // Alone, they go once the wait is over, together.
    const quick = gatedOutbound();
    const sender = createReceiptSender({ outbound: quick.outbound, service: 'app', logger: captureLogger('app').logger, lingerMs: 30 });
    const two = [uuidv7(), uuidv7()].map((ref) => sender.send({ ref, status: 'held' }, { linger: true }));
    await until(() => quick.waiting() === 1);
    expect(receiptsOf(quick.sent[0]!)).toHaveLength(2);
    quick.release();
    expect(await Promise.all(two)).toEqual([true, true]);
    // Due while an envelope is on its way: they go in the next one, with what came meanwhile.
    const busy = gatedOutbound();
    const sender2 = createReceiptSender({ outbound: busy.outbound, service: 'app', logger: captureLogger('app').logger, lingerMs: 30 });
    const first = sender2.send({ ref: uuidv7(), status: 'acknowledged' });
    await until(() => busy.waiting() === 1);
    const late = [sender2.send({ ref: uuidv7(), status: 'held' }, { linger: true }), sender2.send({ ref: uuidv7(), status: 'held' }, { linger: true })];
    const t0 = performance.now();
    await until(() => performance.now() - t0 > 60);
    expect(busy.sent).toHaveLength(1);
    busy.release();
    await until(() => busy.waiting() === 1);
    expect(receiptsOf(busy.sent[1]!)).toHaveLength(2);
    busy.release();
    expect(await Promise.all([first, ...late])).toEqual([true, true, true]);
    expect(DEFAULT_RECEIPT_LINGER_MS).toBeLessThanOrEqual(100);
  });

  it('a lingering receipt other than `held` joins the next envelope that leaves; a lingering `held` only with a receipt about its envelope', async () => {
    const out = gatedOutbound();
    const sender = createReceiptSender({ outbound: out.outbound, service: 'app', logger: captureLogger('app').logger, lingerMs: 600 });
    const [a, b, c, d] = [uuidv7(), uuidv7(), uuidv7(), uuidv7()];
    const given = [
      sender.send({ ref: a, status: 'held' }, { linger: true }),
      sender.send({ ref: b, status: 'acknowledged' }, { linger: true }),
      sender.send({ ref: c, status: 'rejected', reasonCode: 'CR_ENVELOPE_TOO_OLD', disposition: 'quarantined' }, { linger: true }),
    ];
    // d's `held` comes later: its wait is not over when a's is (unless a's timer fires 300 ms late).
    const t0 = performance.now();
    await until(() => performance.now() - t0 > 300);
    given.push(sender.send({ ref: d, status: 'held' }, { linger: true }));
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(out.sent, 'all of them wait for company').toHaveLength(0);
    // a's wait is over first: the `acknowledged` and the `rejected` go with it; d's `held` still waits for its ack.
    await until(() => out.waiting() === 1);
    expect(receiptsOf(out.sent[0]!).map((r) => [r.ref, r.status])).toEqual([
      [a, 'held'],
      [b, 'acknowledged'],
      [c, 'rejected'],
    ]);
    out.release();
    expect(await Promise.all(given.slice(0, 3))).toEqual([true, true, true]);
    // An `acknowledged` given later takes its `held` with it when anything leaves; here its own wait ends first.
    const ackD = sender.send({ ref: d, status: 'acknowledged' }, { linger: true });
    await until(() => out.waiting() === 1);
    expect(receiptsOf(out.sent[1]!).map((r) => [r.ref, r.status])).toEqual([
      [d, 'held'],
      [d, 'acknowledged'],
    ]);
    out.release();
    expect(await Promise.all([given[3], ackD])).toEqual([true, true]);
  });

  it('after flush nothing lingers: a receipt given while the service stops goes at once', async () => {
    const out = gatedOutbound();
    const sender = createReceiptSender({ outbound: out.outbound, service: 'app', logger: captureLogger('app').logger, lingerMs: 60_000 });
    await sender.flush();
    const late = sender.send({ ref: uuidv7(), status: 'acknowledged' }, { linger: true });
    await until(() => out.waiting() === 1);
    out.release();
    expect(await late).toBe(true);
  });

  it('flush sends what waits without waiting out the linger, and resolves once every receipt given has gone (a stopping service)', async () => {
    const out = gatedOutbound();
    const sender = createReceiptSender({ outbound: out.outbound, service: 'app', logger: captureLogger('app').logger, lingerMs: 60_000 });
    const first = sender.send({ ref: uuidv7(), status: 'acknowledged' });
    await until(() => out.waiting() === 1);
    const held = [uuidv7(), uuidv7()].map((ref) => sender.send({ ref, status: 'held' }, { linger: true }));
    let flushed = false;
    const flushing = sender.flush().then(() => (flushed = true));
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(flushed, 'an envelope is still on its way').toBe(false);
    out.release();
    await until(() => out.waiting() === 1);
    expect(receiptsOf(out.sent[1]!).map((r) => r.status)).toEqual(['held', 'held']);
    expect(flushed).toBe(false);
    out.release();
    await flushing;
    expect(await Promise.all([first, ...held])).toEqual([true, true, true]);
    // Nothing waiting: it resolves at once.
    await sender.flush();
    expect(out.sent).toHaveLength(2);
  });

  it('a failed envelope answers false to each of its receipts and logs each by id and code; the next ones still go', async () => {
    const log = captureLogger('app');
    let fail = true;
    const sent: OutboundPayload[] = [];
    const sender = createReceiptSender({
      outbound: { send: async (p) => (fail ? Promise.reject(Object.assign(new Error('SQS down'), { code: 'CR_TRANSPORT_SEND_FAILED' })) : (sent.push(p), uuidv7())) },
      service: 'app',
      logger: log.logger,
    });
    const refs = [uuidv7(), uuidv7()];
    expect(await Promise.all(refs.map((ref) => sender.send({ ref, status: 'held' })))).toEqual([false, false]);
    expect(log.entries().filter((e) => e.msg === 'receipt could not be sent').map((e) => [e.envelopeId, e.code])).toEqual(refs.map((r) => [r, 'CR_TRANSPORT_SEND_FAILED']));
    fail = false;
    expect(await sender.send({ ref: refs[0]!, status: 'acknowledged' })).toBe(true);
    expect(sent).toHaveLength(1);
  });
});
