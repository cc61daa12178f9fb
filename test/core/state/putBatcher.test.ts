import { describe, expect, it } from 'vitest';
import { createApplyLedger } from '../../../services/core/state/applyLedger.ts';
import { createPutBatcher } from '../../../services/core/state/putBatcher.ts';
import type { StateItem, StateTable } from '../../../services/core/state/table.ts';
import { useTestStateTable } from '../../helpers/sqs.ts';

const state = useTestStateTable('app');

/** The table, with each putMany's size recorded and the next `failures` putMany calls refused. */
function watched(): StateTable & { batches: number[]; failures: number } {
  const w = Object.assign(Object.create(state.table) as StateTable, {
    batches: [] as number[],
    failures: 0,
    async putMany(items: readonly StateItem[]) {
      w.batches.push(items.length);
      if (w.failures > 0) {
        w.failures--;
        throw Object.assign(new Error('connect ECONNREFUSED'), { name: 'NetworkingError' });
      }
      return state.table.putMany(items);
    },
  });
  return w;
}

const item = (pk: string, n = 0): StateItem => ({ pk, n, ttl: Math.floor(Date.now() / 1000) + 3600 });

describe('put batcher (group commit of unconditional puts)', () => {
  it('puts made together share one BatchWriteItem per 25 items; each resolves once its item is in the table', async () => {
    const t = watched();
    const batcher = createPutBatcher(t);
    const keys = Array.from({ length: 60 }, () => `batch-test#${crypto.randomUUID()}`);
    await Promise.all(keys.map((k, i) => batcher.put(item(k, i))));
    expect(t.batches).toEqual([25, 25, 10]);
    for (const [i, k] of keys.entries()) expect(await state.table.get(k)).toMatchObject({ pk: k, n: i });
  });

  it('a put made while a write is in flight goes out at once after it, with the others that waited', async () => {
    const t = watched();
    const batcher = createPutBatcher(t);
    const first = batcher.put(item(`batch-test#${crypto.randomUUID()}`));
    await new Promise((resolve) => setImmediate(resolve));
    // The first write is in flight now: these two wait for it, then go out together.
    const later = [batcher.put(item(`batch-test#${crypto.randomUUID()}`)), batcher.put(item(`batch-test#${crypto.randomUUID()}`))];
    await Promise.all([first, ...later]);
    expect(t.batches).toEqual([1, 2]);
  });

  it('two puts of one key in a batch write it once, the later item, and both resolve', async () => {
    const t = watched();
    const batcher = createPutBatcher(t);
    const k = `batch-test#${crypto.randomUUID()}`;
    await Promise.all([batcher.put(item(k, 1)), batcher.put(item(k, 2))]);
    expect(t.batches).toEqual([1]);
    expect(await state.table.get(k)).toMatchObject({ n: 2 });
  });

  it('a failed write rejects the puts it carried, with the store\'s error; the next puts are written', async () => {
    const t = watched();
    t.failures = 1;
    const batcher = createPutBatcher(t);
    const [a, b] = [`batch-test#${crypto.randomUUID()}`, `batch-test#${crypto.randomUUID()}`];
    const results = await Promise.allSettled([batcher.put(item(a)), batcher.put(item(b))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ name: 'NetworkingError' });
    expect(await state.table.get(a)).toBeUndefined();
    await batcher.put(item(a));
    expect(await state.table.get(a)).toMatchObject({ pk: a });
  });
});

describe('apply ledger: applied marks written together', () => {
  it('marks of concurrent acks share one write, leave the item an applied one (no holder, no lease), and every instance then answers applied', async () => {
    const t = watched();
    const a = createApplyLedger({ table: t, holder: 'a', leaseMs: 600_000, ttlSeconds: 3600, batchApplied: true });
    const b = createApplyLedger({ table: state.table, holder: 'b', leaseMs: 600_000, ttlSeconds: 3600 });
    const ids = Array.from({ length: 8 }, () => crypto.randomUUID());
    for (const id of ids) expect(await a.claim(id)).toEqual({ status: 'claimed' });
    const callsBefore = t.calls;
    await Promise.all(ids.map((id) => a.applied(id)));
    expect(t.batches).toEqual([8]);
    expect(t.calls - callsBefore).toBe(1);
    for (const id of ids) {
      const stored = await state.table.get(`apply#${id}`);
      expect(Object.keys(stored!).sort()).toEqual(['appliedAt', 'pk', 'state', 'ttl']);
      expect(stored!.state).toBe('applied');
      expect(await b.claim(id)).toEqual({ status: 'applied' });
    }
    // The same item as the one update of a ledger without batching leaves.
    const single = crypto.randomUUID();
    await b.claim(single);
    await b.applied(single);
    expect(Object.keys((await state.table.get(`apply#${single}`))!).sort()).toEqual(['appliedAt', 'pk', 'state', 'ttl']);
  });

  it('a mark the store refused rejects applied() (the inbox logs it), and leaves the hold as it was', async () => {
    const t = watched();
    t.failures = 1;
    const a = createApplyLedger({ table: t, holder: 'a', leaseMs: 600_000, ttlSeconds: 3600, batchApplied: true });
    const b = createApplyLedger({ table: state.table, holder: 'b', leaseMs: 600_000, ttlSeconds: 3600 });
    const id = crypto.randomUUID();
    await a.claim(id);
    await expect(a.applied(id)).rejects.toMatchObject({ name: 'NetworkingError' });
    expect(await b.claim(id)).toMatchObject({ status: 'held-elsewhere' });
  });
});
