// The app's in-memory inbox on its own: holds (leases), listing, ack and what makes it final
// (the id marked applied, else the delete), release on abort (shutdown), and the capacity bound it reports.
import { describe, expect, it } from 'vitest';
import { inboxEffect } from '../../../services/app/inbox/effect.ts';
import { ACKED_MEMORY_MS, Inbox } from '../../../services/app/inbox/inbox.ts';
import { buildEnvelope, type Envelope } from '../../../services/core/envelope/envelope.ts';
import { silentLogger } from '../../../services/core/log/logger.ts';
import type { ApplyLedger } from '../../../services/core/state/applyLedger.ts';
import type { ReceivedMessage } from '../../../services/core/transport/consumerTypes.ts';
import { memoryApplyLedger } from '../../helpers/ledgers.ts';
import { waitFor } from '../../helpers/wait.ts';

function submission(body = '{"resourceType":"Patient","id":"p1"}', bytes?: Uint8Array): Envelope {
  return buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', partner: 'acme', contentType: 'application/fhir+json', body: bytes ?? body });
}

/** Whether a promise has settled yet (after the microtasks queued so far). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('Inbox', () => {
  it('holds a record until it is acknowledged: the hold stays pending, the record is listed and readable', async () => {
    const inbox = new Inbox(10);
    const e = submission();
    const hold = inbox.hold(e, new AbortController().signal, new Date('2026-01-01T00:00:00Z'));
    expect(await settled(hold)).toBe(false);
    expect(inbox.size).toBe(1);
    expect(inbox.get(e.id)).toEqual(e);
    expect(inbox.list()).toEqual([
      { id: e.id, kind: 'care.submission', partner: 'acme', contentType: 'application/fhir+json', sentAt: e.sentAt, receivedAt: '2026-01-01T00:00:00.000Z', bytes: Buffer.byteLength(e.body) },
    ]);
    expect(inbox.ack(e.id)).toBe(true);
    expect(await hold).toBe('acked');
    expect(inbox.size).toBe(0);
    expect(inbox.get(e.id)).toBeUndefined();
  });

  it('lists metadata only, never the payload; counts decoded bytes of a base64 body', () => {
    const inbox = new Inbox(10);
    const secret = submission('{"resourceType":"Patient","name":[{"family":"Roe","given":["Jane"]}]}');
    const binary = submission(undefined, new Uint8Array([0, 1, 2, 3, 4, 5, 6]));
    void inbox.hold(secret, new AbortController().signal);
    void inbox.hold(binary, new AbortController().signal);
    expect(JSON.stringify(inbox.list())).not.toContain('Roe');
    expect(inbox.list().find((s) => s.id === binary.id)?.bytes).toBe(7);
  });

  it('pages oldest first with limit and after', () => {
    const inbox = new Inbox(10);
    const ids = Array.from({ length: 5 }, () => submission()).map((e) => (void inbox.hold(e, new AbortController().signal), e.id));
    expect(inbox.list(2).map((s) => s.id)).toEqual(ids.slice(0, 2));
    expect(inbox.list(2, ids[1]).map((s) => s.id)).toEqual(ids.slice(2, 4));
    expect(inbox.list(10, ids[4])).toEqual([]);
  });

  it('a second delivery of the same envelope joins the first hold: one record, both settle on one ack', async () => {
    const inbox = new Inbox(10);
    const e = submission();
    const first = inbox.hold(e, new AbortController().signal);
    const second = inbox.hold(e, new AbortController().signal);
    expect(inbox.size).toBe(1);
    inbox.ack(e.id);
    expect(await Promise.all([first, second])).toEqual(['acked', 'acked']);
  });

  it('acking an unknown or already acknowledged record is false and changes nothing', () => {
    const inbox = new Inbox(10);
    const e = submission();
    void inbox.hold(e, new AbortController().signal);
    expect(inbox.ack('01900000-0000-7000-8000-000000000000')).toBe(false);
    expect(inbox.ack(e.id)).toBe(true);
    expect(inbox.ack(e.id)).toBe(false);
    expect(inbox.settlement('01900000-0000-7000-8000-000000000000')).toBeUndefined();
  });

  it('after an ack, settlement() resolves with whether the queue message was deleted when the id was not marked applied', async () => {
    const inbox = new Inbox(10);
    const [ok, failed] = [submission(), submission()];
    void inbox.hold(ok, new AbortController().signal);
    void inbox.hold(failed, new AbortController().signal);
    inbox.ack(ok.id);
    inbox.ack(failed.id);
    const okDeletion = inbox.settlement(ok.id)!;
    const failedDeletion = inbox.settlement(failed.id)!;
    expect(await settled(okDeletion)).toBe(false);
    inbox.deleted(ok.id, true);
    inbox.deleted(failed.id, false);
    expect(await okDeletion).toBe(true);
    expect(await failedDeletion).toBe(false);
    expect(inbox.settlement(ok.id)).toBeUndefined();
  });

  it('at close (the consumer aborts its handlers) every held record is released and removed', async () => {
    const inbox = new Inbox(10);
    const shutdown = new AbortController();
    const holds = [submission(), submission(), submission()].map((e) => inbox.hold(e, shutdown.signal));
    shutdown.abort();
    expect(await Promise.all(holds)).toEqual(['released', 'released', 'released']);
    expect(inbox.size).toBe(0);
    expect(inbox.list()).toEqual([]);
  });

  it('an abort between ack and delete tells the waiting ack the message was not deleted', async () => {
    const inbox = new Inbox(10);
    const shutdown = new AbortController();
    const e = submission();
    void inbox.hold(e, shutdown.signal);
    inbox.ack(e.id);
    const settlement = inbox.settlement(e.id)!;
    shutdown.abort();
    expect(await settlement).toBe(false);
  });

  it('a hold that starts after the shutdown began is released at once and never listed', async () => {
    const inbox = new Inbox(10);
    const shutdown = new AbortController();
    shutdown.abort();
    expect(await inbox.hold(submission(), shutdown.signal)).toBe('released');
    expect(inbox.size).toBe(0);
  });

  it('reports its capacity: the bound the consumer is given as maxInFlight (the inbox itself never evicts)', async () => {
    const inbox = new Inbox(2);
    expect(inbox.capacity).toBe(2);
    const held = [submission(), submission()];
    for (const e of held) void inbox.hold(e, new AbortController().signal);
    expect(inbox.size).toBe(inbox.capacity);
    expect(inbox.list().map((s) => s.id)).toEqual(held.map((e) => e.id));
  });

  it('a copy of an envelope applied before (its holder killed before the receipt went out) says `acknowledged` again', async () => {
    const inbox = new Inbox(10);
    const ledger = memoryApplyLedger();
    const sent: Array<{ ref: string; status: string }> = [];
    const effect = inboxEffect(inbox, { ledger, logger: silentLogger, receipts: { send: async (r) => (sent.push({ ref: r.ref, status: r.status }), true) } });
    const e = submission();
    ledger.done.add(e.id);
    expect(await effect(e, { receiveCount: 2 } as unknown as ReceivedMessage, new AbortController().signal)).toEqual({ status: 'duplicate' });
    expect(sent).toEqual([{ ref: e.id, status: 'acknowledged' }]);
    expect(inbox.size, 'no second record').toBe(0);
  });

  it('a redelivered copy claimed before the ack marked the id applied, arriving after the ack, is never shown again (SQS outage: acked records reappeared)', async () => {
    const inbox = new Inbox(10);
    const ledger = memoryApplyLedger();
    // The copy's claim reached the table while the record was still held by this process (its
    // own hold: claimed), and its answer comes back only after the application's ack.
    let answerClaim!: () => void;
    const lateClaim = new Promise<void>((resolve) => (answerClaim = resolve));
    const racing: ApplyLedger = { ...ledger, claim: async (id) => (id === e.id && ledger.done.size === 0 ? (await lateClaim, { status: 'claimed' }) : ledger.claim(id)) };
    const sent: string[] = [];
    const receipts = { send: async (r: { status: string }) => (sent.push(r.status), true) };
    const e = submission();
    const original = inboxEffect(inbox, { ledger, logger: silentLogger, receipts })(e, { receiveCount: 1 } as unknown as ReceivedMessage, new AbortController().signal);
    await waitFor(() => inbox.size === 1);
    const copy = inboxEffect(inbox, { ledger: racing, logger: silentLogger, receipts })(e, { receiveCount: 2 } as unknown as ReceivedMessage, new AbortController().signal);
    expect(inbox.ack(e.id)).toBe(true);
    const settlement = inbox.settlement(e.id)!;
    const first = await original;
    expect(first.status).toBe('done');
    let settledCopy = false;
    void copy.then(() => (settledCopy = true));
    answerClaim();
    await waitFor(() => settledCopy || inbox.size > 0, { timeoutMs: 10_000, what: 'the copy settled or shown' });
    expect(inbox.size, 'not shown again').toBe(0);
    const second = await copy;
    // Settled like the acknowledged record (its message deleted with its own, current receipt handle).
    expect(second.status).toBe('done');
    expect(inbox.size, 'not shown again').toBe(0);
    expect(inbox.list()).toEqual([]);
    expect(sent.filter((s) => s === 'held'), 'one `held` receipt').toHaveLength(1);
    expect(await settlement, 'final: marked applied').toBe(true);
  });

  it('settlement() is true once the id is marked applied, whatever the delete then does', async () => {
    const inbox = new Inbox(10);
    const e = submission();
    void inbox.hold(e, new AbortController().signal);
    inbox.ack(e.id);
    const settlement = inbox.settlement(e.id)!;
    expect(await settled(settlement)).toBe(false);
    inbox.applied(e.id);
    inbox.deleted(e.id, false);
    expect(await settlement).toBe(true);
    expect(inbox.settlement(e.id)).toBeUndefined();
  });

  it('the ack is final once the id is marked applied: it waits neither for the lingering `acknowledged` receipt nor for the delete, which waits for that receipt', async () => {
    const inbox = new Inbox(10);
    const ledger = memoryApplyLedger();
    const given: Array<{ status: string; linger: boolean }> = [];
    let receiptOut!: () => void;
    const out = new Promise<boolean>((resolve) => (receiptOut = () => resolve(true)));
    const receipts = { send: (r: { status: string }, o?: { linger?: boolean }) => (given.push({ status: r.status, linger: o?.linger === true }), r.status === 'acknowledged' ? out : Promise.resolve(true)) };
    const effect = inboxEffect(inbox, { ledger, logger: silentLogger, receipts });
    const e = submission();
    const result = effect(e, { receiveCount: 1 } as unknown as ReceivedMessage, new AbortController().signal);
    await waitFor(() => inbox.size === 1);
    inbox.ack(e.id);
    expect(await inbox.settlement(e.id)!, 'final before the receipt is out').toBe(true);
    expect(ledger.done.has(e.id)).toBe(true);
    expect(given).toEqual([{ status: 'held', linger: true }, { status: 'acknowledged', linger: true }]);
    // The handler (and so the delete) waits for the receipt: a crash before it is out redelivers a copy, which says it again.
    expect(await settled(result), 'the message waits for its receipt').toBe(false);
    receiptOut();
    expect((await result).status).toBe('done');
  });

  it('when the id cannot be marked applied, the ack waits for the delete and says whether it happened', async () => {
    const inbox = new Inbox(10);
    const ledger = memoryApplyLedger();
    const failing: ApplyLedger = { ...ledger, applied: async () => Promise.reject(Object.assign(new Error('state table unreachable'), { name: 'TimeoutError' })) };
    const effect = inboxEffect(inbox, { ledger: failing, logger: silentLogger, receipts: { send: async () => true } });
    const e = submission();
    const result = effect(e, { receiveCount: 1 } as unknown as ReceivedMessage, new AbortController().signal);
    await waitFor(() => inbox.size === 1);
    inbox.ack(e.id);
    const settlement = inbox.settlement(e.id)!;
    const done = await result;
    expect(done.status).toBe('done');
    expect(await settled(settlement), 'not final: neither marked nor deleted yet').toBe(false);
    (done as { onDeleted: (deleted: boolean) => void }).onDeleted(false);
    expect(await settlement).toBe(false);
  });

  it('remembers acknowledged ids for a while and at most `capacity` of them', () => {
    const inbox = new Inbox(2);
    const t0 = new Date('2026-11-30T12:00:00Z');
    const ids = [submission(), submission(), submission()];
    for (const e of ids) {
      void inbox.hold(e, new AbortController().signal);
      inbox.ack(e.id, t0);
    }
    expect(ids.map((e) => inbox.acknowledged(e.id, t0))).toEqual([false, true, true]);
    expect(inbox.acknowledged(ids[2]!.id, new Date(t0.getTime() + ACKED_MEMORY_MS))).toBe(true);
    expect(inbox.acknowledged(ids[2]!.id, new Date(t0.getTime() + ACKED_MEMORY_MS + 1))).toBe(false);
    expect(inbox.acknowledged('01900000-0000-7000-8000-000000000000', t0)).toBe(false);
  });

  it('as the consumer effect: done with an onDeleted hook on ack, release on shutdown; the ciphertext is dropped while held', async () => {
    const inbox = new Inbox(10);
    const ledger = memoryApplyLedger();
    const effect = inboxEffect(inbox, { ledger, logger: silentLogger });
    let released = 0;
    const message = { receiveCount: 1, releaseBody: () => void released++ } as unknown as ReceivedMessage;
    const e = submission();
    const result = effect(e, message, new AbortController().signal);
    await new Promise((r) => setImmediate(r));
    expect(released).toBe(1);
    inbox.ack(e.id);
    const settlement = inbox.settlement(e.id)!;
    const done = await result;
    expect(done.status).toBe('done');
    expect(ledger.done.has(e.id), 'marked applied before the delete').toBe(true);
    expect(await settlement, 'final once marked applied').toBe(true);
    expect(await effect(e, message, new AbortController().signal), 'the same envelope again is a duplicate').toEqual({ status: 'duplicate' });

    const shutdown = new AbortController();
    const later = effect(submission(), message, shutdown.signal);
    shutdown.abort();
    expect(await later).toEqual({ status: 'release' });
  });
});
