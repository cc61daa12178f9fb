import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope } from '../../../services/core/envelope/envelope.ts';
import { uuidv7 } from '../../../services/core/envelope/uuidv7.ts';
import { RECEIPT_KIND, RECEIPTS_CONTENT_TYPE } from '../../../services/core/receipts/receipt.ts';
import { receiptEffect } from '../../../services/core/receipts/receipts.ts';
import type { ReceivedMessage } from '../../../services/core/transport/consumer.ts';
import type { AuditEvent } from '../../../services/core/audit/types.ts';
import type { StateTable } from '../../../services/core/state/table.ts';
import { SubmissionStatusEvents, type SubmissionStatusEvent } from '../../../services/interface/status/events.ts';
import { createSubmissionStatus } from '../../../services/interface/status/submissionStatus.ts';
import { trackedOutbound } from '../../../services/interface/status/trackedOutbound.ts';
import { captureLogger } from '../../helpers/logs.ts';
import { openTestStateTable, startTestSqs, type TestSqs } from '../../helpers/sqs.ts';

let backend: TestSqs;
let table: StateTable;
beforeAll(async () => {
  backend = await startTestSqs();
  table = openTestStateTable(backend);
});
afterAll(async () => {
  await table.close();
  await backend.stop();
});

function tracker(on: StateTable = table) {
  const events = new SubmissionStatusEvents();
  const published: SubmissionStatusEvent[] = [];
  events.subscribe((e) => published.push(e));
  return { status: createSubmissionStatus({ table: on, ttlSeconds: 3600, events, logger: captureLogger('interface').logger }), published };
}
const base = Date.now() - 60_000;
const at = (s: number): string => new Date(base + s * 1000).toISOString();

describe('submission status (interface)', () => {
  it('the tracked intake path records accepted then queued for a submission (HTTP and MLLP send through it), and leaves other kinds alone', async () => {
    const { status, published } = tracker();
    const sent: string[] = [];
    const copies: string[] = [];
    const outbound = trackedOutbound(
      {
        // As the real path: the status write before the send, then (SQS took it) the one after it.
        send: async (p, beforeSend, afterSend) => {
          await beforeSend?.();
          sent.push(p.kind);
          const sentId = p.id ?? uuidv7();
          await afterSend?.(sentId);
          return sentId;
        },
        recordCopy: async (c) => void copies.push(c.id),
      },
      status,
    );
    const id = uuidv7();
    await outbound.send({ id, kind: 'care.submission', partner: 'acme', contentType: 'application/hl7-v2', bodyEncoding: 'utf8', body: Buffer.from('MSH|'), actor: 'acme' });
    await outbound.send({ kind: 'delivery.receipt', contentType: 'application/json', bodyEncoding: 'utf8', body: Buffer.from('{}'), actor: 'interface' });
    expect(sent).toEqual(['care.submission', 'delivery.receipt']);
    expect((await status.get(id, 'acme'))!.timeline.map((s) => s.status)).toEqual(['accepted', 'queued']);
    expect(published.map((e) => [e.submissionId, e.partner, e.status])).toEqual([
      [id, 'acme', 'accepted'],
      [id, 'acme', 'queued'],
    ]);
    // Only the submitting partner reads it.
    expect(await status.get(id, 'other')).toBeUndefined();
    // A copy's lines go to the path it wraps, and write no status.
    await outbound.recordCopy({ id, kind: 'care.submission', actor: 'acme' });
    expect(copies).toEqual([id]);
    expect((await status.get(id, 'acme'))!.timeline).toHaveLength(2);
  });

  it('a send that fails leaves the submission accepted, never queued', async () => {
    const { status } = tracker();
    const outbound = trackedOutbound({ send: async (_p, beforeSend) => (await beforeSend?.(), Promise.reject(new Error('SQS refused'))), recordCopy: () => Promise.reject(new Error('no copies here')) }, status);
    const id = uuidv7();
    await expect(outbound.send({ id, kind: 'care.submission', partner: 'acme', contentType: 'application/fhir+json', bodyEncoding: 'utf8', body: Buffer.from('{}'), actor: 'acme' })).rejects.toThrow();
    expect((await status.get(id, 'acme'))!.status).toBe('accepted');
  });

  it('receipts: acknowledged before held does not go back, and only forward moves are published', async () => {
    const { status, published } = tracker();
    const id = uuidv7();
    await status.accepted(id, 'acme');
    await status.queued(id);
    expect((await status.applyReceipt({ ref: id, status: 'acknowledged', at: at(3) }, 'app', uuidv7())).change).toBe('moved');
    expect((await status.applyReceipt({ ref: id, status: 'held', at: at(2) }, 'app', uuidv7())).change).toBe('filled');
    const record = (await status.get(id, 'acme'))!;
    expect(record.status).toBe('acknowledged');
    expect(record.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'held', 'acknowledged']);
    expect(published.map((e) => e.status)).toEqual(['accepted', 'queued', 'acknowledged']);
  });

  it('a rejection the app dead-lettered is `dead-lettered`, a quarantined one `rejected`, each with its reason code', async () => {
    const { status, published } = tracker();
    const dl = uuidv7();
    const q = uuidv7();
    for (const id of [dl, q]) await status.accepted(id, 'acme');
    await status.applyReceipt({ ref: dl, status: 'rejected', reasonCode: 'CR_INBOX_HELD_ELSEWHERE', disposition: 'dead-lettered', at: at(1) }, 'app', uuidv7());
    await status.applyReceipt({ ref: q, status: 'rejected', reasonCode: 'CR_ENVELOPE_TOO_OLD', disposition: 'quarantined', at: at(1) }, 'app', uuidv7());
    expect((await status.get(dl, 'acme'))!.timeline.at(-1)).toMatchObject({ status: 'dead-lettered', reasonCode: 'CR_INBOX_HELD_ELSEWHERE' });
    expect((await status.get(q, 'acme'))!.timeline.at(-1)).toMatchObject({ status: 'rejected', reasonCode: 'CR_ENVELOPE_TOO_OLD' });
    expect(published.filter((e) => e.status === 'dead-lettered' || e.status === 'rejected')).toEqual([
      { submissionId: dl, partner: 'acme', status: 'dead-lettered', reasonCode: 'CR_INBOX_HELD_ELSEWHERE', at: at(1) },
      { submissionId: q, partner: 'acme', status: 'rejected', reasonCode: 'CR_ENVELOPE_TOO_OLD', at: at(1) },
    ]);
    // A receipt for an id never submitted here is unknown: nothing published.
    const before = published.length;
    expect((await status.applyReceipt({ ref: uuidv7(), status: 'held', at: at(1) }, 'app', uuidv7())).change).toBe('unknown');
    expect(published).toHaveLength(before);
  });

  it('held and acknowledged in one receipt envelope move the submission in one state-table write, each audited, published and remembered on its own (a copy audited again, marked copy)', async () => {
    const writes: string[] = [];
    const counting: StateTable = { ...table, update: (pk, change) => (writes.push(pk), table.update(pk, change)), put: (item, options) => (writes.push(String(item.pk)), table.put(item, options)) };
    const { status, published } = tracker(counting);
    const audit: AuditEvent[] = [];
    const effect = receiptEffect({ table: counting, ttlSeconds: 3600, apply: status.applyReceipt, applyInTurn: status.applyInTurn, audit: { record: async (e) => void audit.push(e) }, service: 'interface', logger: captureLogger('interface').logger });
    const receive = (body: unknown) => effect(buildEnvelope({ kind: RECEIPT_KIND, from: 'app', to: 'interface', queue: 'app-to-interface', contentType: RECEIPTS_CONTENT_TYPE, body: JSON.stringify(body) }), {} as ReceivedMessage, new AbortController().signal);
    const [id, late] = [uuidv7(), uuidv7()];
    for (const ref of [id, late]) {
      await status.accepted(ref, 'acme');
      await status.queued(ref);
    }
    writes.length = 0;
    published.length = 0;

    const both = { receipts: [{ ref: id, status: 'held', at: at(2) }, { ref: id, status: 'acknowledged', at: at(3) }] };
    const envelope = buildEnvelope({ kind: RECEIPT_KIND, from: 'app', to: 'interface', queue: 'app-to-interface', contentType: RECEIPTS_CONTENT_TYPE, body: JSON.stringify(both) });
    expect(await effect(envelope, {} as ReceivedMessage, new AbortController().signal)).toEqual({ status: 'done' });
    expect(writes).toEqual([`submission#${id}`]);
    expect((await status.get(id, 'acme'))!.timeline.map((s) => [s.status, s.at])).toEqual([
      ['accepted', expect.any(String)],
      ['queued', expect.any(String)],
      ['held', at(2)],
      ['acknowledged', at(3)],
    ]);
    expect(audit.map((e) => [e.action, e.resourceId, e.details])).toEqual([
      ['receipt.applied', id, { receiptId: `${envelope.id}.0`, status: 'held', change: 'moved' }],
      ['receipt.applied', id, { receiptId: `${envelope.id}.1`, status: 'acknowledged', change: 'moved' }],
    ]);
    expect(published.map((e) => [e.submissionId, e.status, e.at])).toEqual([
      [id, 'held', at(2)],
      [id, 'acknowledged', at(3)],
    ]);
    // A second copy of the envelope: a duplicate, nothing written or published; each receipt audited again as a copy.
    writes.length = 0;
    expect(await effect(envelope, {} as ReceivedMessage, new AbortController().signal)).toEqual({ status: 'duplicate' });
    expect(writes.filter((pk) => !pk.startsWith('submission#'))).toEqual([]);
    expect(audit.slice(2).map((e) => [e.action, e.resourceId, e.details])).toEqual([
      ['receipt.applied', id, { receiptId: `${envelope.id}.0`, status: 'held', change: 'unchanged', copy: true }],
      ['receipt.applied', id, { receiptId: `${envelope.id}.1`, status: 'acknowledged', change: 'unchanged', copy: true }],
    ]);
    audit.splice(2);
    expect(published).toHaveLength(2);

    // `held` came alone before (another report): the pair is applied one at a time, as it always was.
    await status.applyReceipt({ ref: late, status: 'held', at: at(2) }, 'app', uuidv7());
    published.length = 0;
    expect(await receive({ receipts: [{ ref: late, status: 'held', at: at(2) }, { ref: late, status: 'acknowledged', at: at(3) }] })).toEqual({ status: 'done' });
    expect(audit.slice(2).map((e) => [e.resourceId, (e.details as { status: string }).status, (e.details as { change: string }).change])).toEqual([
      [late, 'held', 'unchanged'],
      [late, 'acknowledged', 'moved'],
    ]);
    expect(published.map((e) => e.status)).toEqual(['acknowledged']);
    expect((await status.get(late, 'acme'))!.status).toBe('acknowledged');
    // Receipts about two submissions are never written as one (the effect groups by submission; this holds without it).
    const [x, y] = [uuidv7(), uuidv7()];
    for (const ref of [x, y]) await status.accepted(ref, 'acme');
    writes.length = 0;
    expect(await status.applyInTurn([{ id: uuidv7(), receipt: { ref: x, status: 'held', at: at(2) } }, { id: uuidv7(), receipt: { ref: y, status: 'acknowledged', at: at(3) } }], 'app')).toBeUndefined();
    expect(writes).toEqual([]);
  });
});
