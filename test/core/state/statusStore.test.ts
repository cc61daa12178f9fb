import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../../services/core/envelope/uuidv7.ts';
import { createStatusStore } from '../../../services/core/state/statusStore.ts';
import type { StateTable } from '../../../services/core/state/table.ts';
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

type S = 'accepted' | 'queued' | 'held' | 'acknowledged' | 'rejected';
const ranks = { accepted: 0, queued: 1, held: 2, rejected: 3, acknowledged: 4 } as const;
const store = (now?: () => number) => createStatusStore<S>({ table, prefix: 'test-status', ranks, ttlSeconds: 3600, ...(now ? { now } : {}) });
const at = (s: number): Date => new Date(Date.UTC(2026, 0, 1, 12, 0, s));

describe('status store (state table, conditional writes)', () => {
  it('moves forward through the lifecycle, each step with its time, and keeps the owner', async () => {
    const s = store();
    const id = uuidv7();
    expect(await s.begin(id, 'acme', 'accepted', at(0))).toBe('moved');
    expect(await s.record(id, 'queued', {}, at(1))).toEqual({ change: 'moved', owner: 'acme' });
    expect(await s.record(id, 'held', {}, at(2))).toEqual({ change: 'moved', owner: 'acme' });
    expect(await s.record(id, 'acknowledged', {}, at(3))).toEqual({ change: 'moved', owner: 'acme' });
    const record = await s.get(id);
    expect(record).toEqual({
      id,
      owner: 'acme',
      status: 'acknowledged',
      timeline: [
        { status: 'accepted', at: at(0).toISOString() },
        { status: 'queued', at: at(1).toISOString() },
        { status: 'held', at: at(2).toISOString() },
        { status: 'acknowledged', at: at(3).toISOString() },
      ],
    });
  });

  it('an out-of-order step (acknowledged before held) never moves the status backwards, but fills the timeline once', async () => {
    const s = store();
    const id = uuidv7();
    await s.begin(id, 'acme', 'accepted', at(0));
    expect((await s.record(id, 'acknowledged', {}, at(3))).change).toBe('moved');
    expect((await s.record(id, 'held', {}, at(2))).change).toBe('filled');
    expect((await s.record(id, 'held', {}, at(5))).change).toBe('unchanged');
    expect((await s.record(id, 'rejected', { reasonCode: 'CR_ENVELOPE_TOO_OLD' }, at(6))).change).toBe('filled');
    const record = (await s.get(id))!;
    expect(record.status).toBe('acknowledged');
    expect(record.timeline.map((t) => t.status)).toEqual(['accepted', 'held', 'rejected', 'acknowledged']);
    expect(record.timeline.find((t) => t.status === 'held')!.at).toBe(at(2).toISOString());
  });

  it('a second begin (an idempotent retry) changes nothing; an unknown id is unknown, not an error', async () => {
    const s = store();
    const id = uuidv7();
    await s.begin(id, 'acme', 'accepted', at(0));
    await s.record(id, 'queued', {}, at(1));
    expect(await s.begin(id, 'acme', 'accepted', at(9))).toBe('unchanged');
    expect((await s.get(id))!.status).toBe('queued');
    expect(await s.record(uuidv7(), 'held')).toEqual({ change: 'unknown' });
    expect(await s.get(uuidv7())).toBeUndefined();
  });

  it('concurrent writers of different steps on two instances converge on the furthest status and the whole timeline', async () => {
    const id = uuidv7();
    await store().begin(id, 'acme', 'accepted', at(0));
    const a = store();
    const b = store();
    const results = await Promise.all([a.record(id, 'held', {}, at(2)), b.record(id, 'acknowledged', {}, at(3)), a.record(id, 'queued', {}, at(1)), b.record(id, 'held', {}, at(2)), a.record(id, 'acknowledged', {}, at(3))]);
    const record = (await a.get(id))!;
    expect(record.status).toBe('acknowledged');
    expect(record.timeline.map((t) => t.status)).toEqual(['accepted', 'queued', 'held', 'acknowledged']);
    // Each step was written once: the others found it there.
    expect(results.filter((r) => r.change === 'unchanged')).toHaveLength(2);
  });

  it('keeps the report that wrote a step with it: a second copy of that report is known as such, another report of the same step is not, and the timeline shows neither', async () => {
    const s = store();
    const id = uuidv7();
    const [held, acked, ackedAgain] = [uuidv7(), uuidv7(), uuidv7()];
    await s.begin(id, 'acme', 'accepted', at(0));
    expect(await s.record(id, 'acknowledged', {}, at(3), acked)).toEqual({ change: 'moved', owner: 'acme' });
    expect(await s.record(id, 'held', {}, at(2), held)).toEqual({ change: 'filled', owner: 'acme' });
    // Second copies: of the report that moved the status, and of the one that filled the timeline.
    expect(await s.record(id, 'acknowledged', {}, at(3), acked)).toEqual({ change: 'unchanged', owner: 'acme', sameReport: true });
    expect(await s.record(id, 'held', {}, at(2), held)).toEqual({ change: 'unchanged', owner: 'acme', sameReport: true });
    // The same step from another report (a resent receipt), or with no report named.
    expect(await s.record(id, 'acknowledged', {}, at(4), ackedAgain)).toEqual({ change: 'unchanged', owner: 'acme' });
    expect(await s.record(id, 'acknowledged', {}, at(4))).toEqual({ change: 'unchanged', owner: 'acme' });
    expect((await table.get(`test-status#${id}`))!.steps).toMatchObject({ held: { by: held }, acknowledged: { by: acked } });
    expect((await s.get(id))!.timeline).toEqual([
      { status: 'accepted', at: at(0).toISOString() },
      { status: 'held', at: at(2).toISOString() },
      { status: 'acknowledged', at: at(3).toISOString() },
    ]);
  });

  it('records steps that each move the status in turn in one write, each with its report; anything else writes nothing and is left to `record`', async () => {
    let clock = Date.UTC(2026, 0, 1, 12);
    const s = store(() => clock);
    const writes: string[] = [];
    const counted = createStatusStore<S>({ table: { ...table, update: (pk, change) => (writes.push(pk), table.update(pk, change)) }, prefix: 'test-status', ranks, ttlSeconds: 3600, now: () => clock });
    const id = uuidv7();
    const [held, acked] = [uuidv7(), uuidv7()];
    await s.begin(id, 'acme', 'accepted', at(0));
    await s.record(id, 'queued', {}, at(1));
    expect(await counted.recordInTurn(id, [{ status: 'held', at: at(2), by: held }, { status: 'acknowledged', at: at(3), by: acked }])).toEqual({ change: 'moved', owner: 'acme' });
    expect(writes).toHaveLength(1);
    expect((await table.get(`test-status#${id}`))!).toMatchObject({ status: 'acknowledged', rank: ranks.acknowledged, steps: { held: { by: held }, acknowledged: { by: acked } } });
    expect((await s.get(id))!.timeline.map((t) => [t.status, t.at])).toEqual([
      ['accepted', at(0).toISOString()],
      ['queued', at(1).toISOString()],
      ['held', at(2).toISOString()],
      ['acknowledged', at(3).toISOString()],
    ]);
    // A second copy: its steps are known; nothing is written, and `record` finds them the same report.
    expect(await counted.recordInTurn(id, [{ status: 'held', at: at(2), by: held }, { status: 'acknowledged', at: at(3), by: acked }])).toBeUndefined();
    expect(await s.record(id, 'held', {}, at(2), held)).toEqual({ change: 'unchanged', owner: 'acme', sameReport: true });

    // Steps out of order, or twice, are never written together (not even tried).
    const other = uuidv7();
    await s.begin(other, 'acme', 'accepted', at(0));
    writes.length = 0;
    expect(await counted.recordInTurn(other, [{ status: 'acknowledged' }, { status: 'held' }])).toBeUndefined();
    expect(await counted.recordInTurn(other, [{ status: 'held' }, { status: 'held' }])).toBeUndefined();
    expect(await counted.recordInTurn(other, [])).toBeUndefined();
    expect(writes).toEqual([]);
    // One step is known already (held came alone before): the write is refused whole.
    await s.record(other, 'held', {}, at(2), held);
    expect(await counted.recordInTurn(other, [{ status: 'held', at: at(2) }, { status: 'acknowledged', at: at(3) }])).toBeUndefined();
    // The status is past the first step (a rejection stands; acknowledged outranks it).
    const rejected = uuidv7();
    await s.begin(rejected, 'acme', 'accepted', at(0));
    await s.record(rejected, 'rejected', { reasonCode: 'CR_ENVELOPE_TOO_OLD' }, at(4));
    expect(await counted.recordInTurn(rejected, [{ status: 'held', at: at(2) }, { status: 'acknowledged', at: at(3) }])).toBeUndefined();
    for (const [ref, status] of [[other, 'held'], [rejected, 'rejected']] as const) {
      const record = (await s.get(ref))!;
      expect(record.status).toBe(status);
      expect(record.timeline.map((t) => t.status)).not.toContain('acknowledged');
    }
    // Unknown, and expired.
    expect(await counted.recordInTurn(uuidv7(), [{ status: 'held' }, { status: 'acknowledged' }])).toBeUndefined();
    clock += 3601 * 1000;
    const expired = uuidv7();
    await table.put({ pk: `test-status#${expired}`, owner: 'acme', status: 'queued', rank: ranks.queued, steps: {}, ttl: Math.floor(clock / 1000) - 1 });
    expect(await counted.recordInTurn(expired, [{ status: 'held' }, { status: 'acknowledged' }])).toBeUndefined();
    expect((await table.get(`test-status#${expired}`))!.status).toBe('queued');
  });

  it('says whether a record reached a status or one ranked above it; an unknown or expired id reached none', async () => {
    let clock = Date.UTC(2026, 0, 1);
    const s = store(() => clock);
    const id = uuidv7();
    expect(await s.reached(id, 'accepted')).toBe(false);
    await s.begin(id, 'acme', 'accepted');
    expect([await s.reached(id, 'accepted'), await s.reached(id, 'queued')]).toEqual([true, false]);
    await s.record(id, 'rejected');
    expect([await s.reached(id, 'queued'), await s.reached(id, 'rejected'), await s.reached(id, 'acknowledged')]).toEqual([true, true, false]);
    clock += 3601 * 1000;
    expect(await s.reached(id, 'accepted')).toBe(false);
  });

  it('keeps the reason code of a refusal with its step', async () => {
    const s = store();
    const id = uuidv7();
    await s.begin(id, 'acme', 'accepted', at(0));
    await s.record(id, 'rejected', { reasonCode: 'CR_ENVELOPE_WRONG_QUEUE' }, at(4));
    expect((await s.get(id))!.timeline.at(-1)).toEqual({ status: 'rejected', at: at(4).toISOString(), reasonCode: 'CR_ENVELOPE_WRONG_QUEUE' });
  });

  it('stores the TTL attribute (the queue retention from the last change) and treats an expired record as unknown', async () => {
    let clock = Date.UTC(2026, 0, 1);
    const s = store(() => clock);
    const id = uuidv7();
    await s.begin(id, 'acme', 'accepted');
    const item = await table.get(`test-status#${id}`);
    expect(item!.ttl).toBe(Math.floor(clock / 1000) + 3600);
    clock += 1000 * 1000;
    await s.record(id, 'queued');
    expect((await table.get(`test-status#${id}`))!.ttl).toBe(Math.floor(clock / 1000) + 3600);
    clock += 3601 * 1000;
    expect(await s.get(id)).toBeUndefined();
    expect(await s.record(id, 'held')).toEqual({ change: 'unknown' });
    // An expired record may be begun again (DynamoDB deletes expired items only eventually).
    expect(await s.begin(id, 'other', 'accepted')).toBe('moved');
    expect((await s.get(id))!.owner).toBe('other');
  });
});
