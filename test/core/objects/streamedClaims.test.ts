// Idempotency-Key claims of streamed (large) bodies (Idempotency.runStreamed) on a real state
// table: the claim's lease is renewed while a slow upload runs, so that a retry waits for it
// instead of taking it over; a retry is matched on the body's own SHA-256 and size, recorded with
// the claim once the first body has streamed through (409 for another body, also of the same length).
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RelayError } from '../../../services/core/errors/relayError.ts';
import { createIdempotency, type BodyDigest, type StreamedAttempt } from '../../../services/core/relay/idempotency.ts';
import { useTestStateTable } from '../../helpers/sqs.ts';
import { waitFor } from '../../helpers/wait.ts';

const state = useTestStateTable();

const key = (): string => `k-${randomBytes(6).toString('hex')}`;
const digestOf = (text: string): BodyDigest => ({ bytes: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') });
/** A retry's body: its digest, and whether it was read through. */
const compared = (text: string, declared?: number) => {
  const state = { read: false };
  return { state, body: { declaredBytes: declared, digest: async () => ((state.read = true), digestOf(text)) } };
};

/** Streamed sends: what each was asked, and the statuses they leave (`sent`). */
function sender() {
  const queued = new Set<string>();
  const calls: Array<{ id: string; takeover: boolean }> = [];
  return {
    calls,
    sent: async (id: string) => queued.has(id),
    /** A send of `text` that settles its digest, then waits for `until` before it relays. */
    create: (text: string, until: () => Promise<void> = async () => undefined) => async (id: string, attempt: StreamedAttempt) => {
      calls.push({ id, takeover: attempt.takeover });
      await attempt.settle(digestOf(text));
      await until();
      if (attempt.lost.aborted) throw new Error('lease lost');
      queued.add(id);
      return id;
    },
  };
}

async function rejection(p: Promise<unknown>): Promise<RelayError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RelayError);
  return err as RelayError;
}

describe('Idempotency-Key claims of streamed bodies', () => {
  it('a retry during an upload that outlasts the lease waits for it (the lease is renewed) and answers its id; nothing is sent twice', async () => {
    const s = sender();
    const idem = createIdempotency({ table: state.table, ttlSeconds: 3600, leaseMs: 300, pollMs: 20, sent: s.sent });
    const k = key();
    let finish!: () => void;
    const slow = new Promise<void>((resolve) => (finish = resolve));
    const first = idem.runStreamed('acme', k, 'application/xml', compared('doc').body, s.create('doc', () => slow));
    await waitFor(() => s.calls.length === 1, { what: 'the first upload under way' });
    const retry = compared('doc');
    const second = idem.runStreamed('acme', k, 'application/xml', retry.body, s.create('doc'));
    // Renewed past four lease lengths: without renewal the retry would have taken the claim over long before.
    await waitFor(
      async () => {
        const item = await state.table.get(`idem#acme#${k}`);
        return Number(item?.leaseUntil) >= Number(item?.lease) + 4 * 300;
      },
      { timeoutMs: 10_000, what: 'the lease renewed past four lease lengths' },
    );
    expect(s.calls).toHaveLength(1);
    finish();
    const [a, b] = await Promise.all([first, second]);
    expect(a).toMatchObject({ replayed: false, created: true });
    expect(b).toEqual({ id: a.id, replayed: true, created: false });
    expect(retry.state.read).toBe(true);
    expect(s.calls).toEqual([{ id: a.id, takeover: false }]);
  });

  it('a retry with another body of the same length is 409 CR_IDEMPOTENCY_KEY_REUSED; the same body answers the same id', async () => {
    const s = sender();
    const idem = createIdempotency({ table: state.table, ttlSeconds: 3600, sent: s.sent });
    const k = key();
    const first = await idem.runStreamed('acme', k, 'application/xml', compared('doc-A').body, s.create('doc-A'));
    const other = await rejection(idem.runStreamed('acme', k, 'application/xml', compared('doc-B', 5).body, s.create('doc-B')));
    expect([other.code, other.status]).toEqual(['CR_IDEMPOTENCY_KEY_REUSED', 409]);
    const chunked = await rejection(idem.runStreamed('acme', k, 'application/xml', compared('doc-B').body, s.create('doc-B')));
    expect(chunked.code).toBe('CR_IDEMPOTENCY_KEY_REUSED');
    expect(await idem.runStreamed('acme', k, 'application/xml', compared('doc-A').body, s.create('doc-A'))).toEqual({ id: first.id, replayed: true, created: false });
    expect(s.calls).toHaveLength(1);
  });

  it('a retry declaring another Content-Length than the recorded body is 409 without reading its body', async () => {
    const s = sender();
    const idem = createIdempotency({ table: state.table, ttlSeconds: 3600, sent: s.sent });
    const k = key();
    await idem.runStreamed('acme', k, 'application/xml', compared('doc-A').body, s.create('doc-A'));
    const longer = compared('doc-A plus more', 15);
    expect((await rejection(idem.runStreamed('acme', k, 'application/xml', longer.body, s.create('x')))).code).toBe('CR_IDEMPOTENCY_KEY_REUSED');
    expect(longer.state.read).toBe(false);
  });

  it('a takeover of a claim whose sender failed after recording its body compares bodies before relaying: another body is 409', async () => {
    const s = sender();
    const idem = createIdempotency({ table: state.table, ttlSeconds: 3600, sent: s.sent });
    const k = key();
    // The first records its digest, then its pointer send fails: the lease is given up at once.
    await expect(
      idem.runStreamed('acme', k, 'application/xml', compared('doc-A').body, async (_id, attempt) => {
        await attempt.settle(digestOf('doc-A'));
        throw new Error('SQS down');
      }),
    ).rejects.toThrow('SQS down');
    const other = await rejection(idem.runStreamed('acme', k, 'application/xml', compared('doc-B').body, s.create('doc-B')));
    expect(other.code).toBe('CR_IDEMPOTENCY_KEY_REUSED');
    expect(s.calls.map((c) => c.takeover)).toEqual([true]);
    const same = await idem.runStreamed('acme', k, 'application/xml', compared('doc-A').body, s.create('doc-A'));
    expect(same).toMatchObject({ replayed: true, created: true });
    expect(s.calls.map((c) => c.takeover)).toEqual([true, true]);
  });

  it('a sender whose claim was taken over cannot record its body: it relays nothing (503)', async () => {
    const s = sender();
    let now = Date.now();
    const idem = createIdempotency({ table: state.table, ttlSeconds: 3600, leaseMs: 60_000, now: () => now, sent: s.sent });
    const k = key();
    let settleFirst!: () => void;
    const gate = new Promise<void>((resolve) => (settleFirst = resolve));
    const first = idem.runStreamed('acme', k, 'application/xml', compared('doc').body, async (id, attempt) => {
      await gate;
      await attempt.settle(digestOf('doc'));
      return id;
    });
    await waitFor(async () => (await state.table.get(`idem#acme#${k}`)) !== undefined, { what: 'the first claim' });
    // The first sender looks dead (its clock-driven renewals are 20 s apart): a retry takes over.
    now += 61_000;
    const second = await idem.runStreamed('acme', k, 'application/xml', compared('doc').body, s.create('doc'));
    expect(second).toMatchObject({ replayed: true, created: true });
    settleFirst();
    const err = await rejection(first);
    expect(err.status).toBe(503);
  });
});
