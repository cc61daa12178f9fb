import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIdempotency } from '../../../services/core/relay/idempotency.ts';
import { createApplyLedger } from '../../../services/core/state/applyLedger.ts';
import { createHolderLiveness } from '../../../services/core/state/liveness.ts';
import { createDeliveryLedger } from '../../../services/core/state/deliveryLedger.ts';
import { dynamoEmergencyStore } from '../../../services/core/state/emergencyStore.ts';
import { openStateTable, type StateTable } from '../../../services/core/state/table.ts';
import { openTestStateTable, startTestSqs, type TestSqs } from '../../helpers/sqs.ts';
import { waitFor } from '../../helpers/wait.ts';

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

const key = (): string => `k-${randomBytes(6).toString('hex')}`;
const body = Buffer.from('{"resourceType":"Patient"}');
/**
 * The envelopes whose status reached `queued`, shared by every instance as the state table is: what
 * settles a claim (`sent`). The sends below record it once they succeeded, as the services' sends do.
 */
const queued = new Set<string>();
const sent = async (id: string): Promise<boolean> => queued.has(id);
const sendsOk = async (id: string): Promise<string> => (queued.add(id), id);

describe('Idempotency-Key claims in the state table', () => {
  it('two concurrent identical requests on two instances make one envelope and answer the same id', async () => {
    const a = createIdempotency({ table, ttlSeconds: 3600, pollMs: 10, sent });
    const b = createIdempotency({ table, ttlSeconds: 3600, pollMs: 10, sent });
    const sends: string[] = [];
    const create = async (id: string): Promise<string> => {
      sends.push(id);
      await new Promise((resolve) => setTimeout(resolve, 50));
      return sendsOk(id);
    };
    const k = key();
    const results = await Promise.all([a.run('acme', k, body, 'application/fhir+json', create), b.run('acme', k, body, 'application/fhir+json', create), a.run('acme', k, body, 'application/fhir+json', create)]);
    expect(sends).toHaveLength(1);
    expect(new Set(results.map((r) => r.id))).toEqual(new Set(sends));
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
  });

  it('a retry after a restart (a new instance) answers the same id; another body is a 409', async () => {
    const k = key();
    const first = await createIdempotency({ table, ttlSeconds: 3600, sent }).run('acme', k, body, 'application/fhir+json', sendsOk);
    const restarted = createIdempotency({ table, ttlSeconds: 3600, sent });
    const never = async (): Promise<string> => {
      throw new Error('must not send again');
    };
    await expect(restarted.run('acme', k, body, 'application/fhir+json', never)).resolves.toEqual({ id: first.id, replayed: true, created: false });
    await expect(restarted.run('acme', k, Buffer.from('{"other":1}'), 'application/fhir+json', never)).rejects.toMatchObject({ code: 'CR_IDEMPOTENCY_KEY_REUSED', status: 409 });
    // Keys are per partner: the same key from another partner is another submission.
    const other = await restarted.run('beta', k, body, 'application/fhir+json', sendsOk);
    expect(other.id).not.toBe(first.id);
  });

  it('a claimer that crashed before sending blocks only for its lease; the retry sends the same envelope id', async () => {
    let clock = Date.now();
    const crashed = createIdempotency({ table, ttlSeconds: 3600, leaseMs: 1000, now: () => clock, sent });
    const k = key();
    let decided = '';
    // The first claimer "crashes": its send never finishes.
    void crashed.run('acme', k, body, 'application/fhir+json', (id) => {
      decided = id;
      return new Promise<string>(() => undefined);
    });
    await expect.poll(() => decided).not.toBe('');
    clock += 1500;
    const retry = createIdempotency({ table, ttlSeconds: 3600, leaseMs: 1000, now: () => clock, sent });
    const sends: string[] = [];
    const res = await retry.run('acme', k, body, 'application/fhir+json', async (id) => (sends.push(id), sendsOk(id)));
    expect(sends).toEqual([decided]);
    expect(res.id).toBe(decided);
  });

  it('a failed send gives the lease up at once: the next retry sends the same id without waiting', async () => {
    const idem = createIdempotency({ table, ttlSeconds: 3600, leaseMs: 600_000, sent });
    const k = key();
    let first = '';
    await expect(idem.run('acme', k, body, 'application/fhir+json', async (id) => ((first = id), Promise.reject(new Error('SQS down'))))).rejects.toThrow('SQS down');
    const res = await idem.run('acme', k, body, 'application/fhir+json', sendsOk);
    expect(res.id).toBe(first);
  });

  it('refuses a malformed key with 400', async () => {
    await expect(createIdempotency({ table, ttlSeconds: 60, sent }).run('acme', 'has space', body, 'text/plain', async (id) => id)).rejects.toMatchObject({ code: 'CR_IDEMPOTENCY_KEY_INVALID', status: 400 });
  });
});

describe('apply ledger', () => {
  it('one holder at a time; applied ids are duplicates for everyone; a hold without liveness ends with its lease', async () => {
    let clock = Date.now();
    const opts = { table, leaseMs: 1000, ttlSeconds: 3600, now: () => clock };
    const a = createApplyLedger({ ...opts, holder: 'a' });
    const b = createApplyLedger({ ...opts, holder: 'b' });
    const id = crypto.randomUUID();
    expect(await a.claim(id)).toEqual({ status: 'claimed' });
    expect(await a.claim(id)).toEqual({ status: 'claimed' });
    expect(await b.claim(id)).toEqual({ status: 'held-elsewhere', leftMs: 1000 });
    clock += 800;
    expect(await b.claim(id)).toEqual({ status: 'held-elsewhere', leftMs: 200 });
    clock += 1500;
    expect(await b.claim(id)).toEqual({ status: 'claimed' });
    expect(await a.claim(id)).toMatchObject({ status: 'held-elsewhere' });
    await b.applied(id);
    expect(await a.claim(id)).toEqual({ status: 'applied' });
    expect(await b.claim(id)).toEqual({ status: 'applied' });
  });

  it('with liveness a hold lasts while its holder renews one lease for the process, and is taken over once the holder stopped renewing (a crash) or stopped', async () => {
    let clock = Date.now();
    const common = { table, leaseMs: 1000, now: () => clock };
    const instance = (name: string, renewMs: number) => {
      const holder = `${name}-${crypto.randomUUID()}`;
      const liveness = createHolderLiveness({ ...common, holder, renewMs });
      return { holder, liveness, ledger: createApplyLedger({ ...common, holder, ttlSeconds: 3600, liveness }) };
    };
    const a = instance('a', 20);
    const b = instance('b', 20);
    const c = instance('c', 3_600_000);
    await Promise.all([a.liveness.start(), b.liveness.start(), c.liveness.start()]);
    const [held, stopped] = [crypto.randomUUID(), crypto.randomUUID()];
    expect(await a.ledger.claim(held)).toEqual({ status: 'claimed' });
    expect(await c.ledger.claim(stopped)).toEqual({ status: 'claimed' });
    // Far past the per-record lease: a's renewals of its one process lease keep its hold.
    clock += 5000;
    await waitFor(async () => (await b.liveness.leftMs(a.holder)) === 1000, { timeoutMs: 10_000, what: 'a renewed its process lease' });
    expect(await b.ledger.claim(held)).toMatchObject({ status: 'held-elsewhere' });
    // A holder that stops cleanly removes its lease: its holds are taken at once.
    await c.liveness.stop();
    expect(await b.ledger.claim(stopped)).toEqual({ status: 'claimed' });
    // a crashes: its last lease was written now and is never renewed (the same holder, no timer).
    await a.liveness.stop();
    const crashed = createHolderLiveness({ ...common, holder: a.holder, renewMs: 3_600_000 });
    await crashed.start();
    expect(await b.ledger.claim(held)).toEqual({ status: 'held-elsewhere', leftMs: 1000 });
    clock += 1500;
    expect(await b.ledger.claim(held)).toEqual({ status: 'claimed' });
    await waitFor(async () => (await a.liveness.leftMs(b.holder)) === 1000, { timeoutMs: 10_000, what: 'b renewed its process lease' });
    expect(await a.ledger.claim(held)).toMatchObject({ status: 'held-elsewhere' });
    await b.ledger.applied(held);
    expect(await a.ledger.claim(held)).toEqual({ status: 'applied' });
    await Promise.all([crashed.stop(), b.liveness.stop()]);
  });

  it('a released hold is taken at once by another instance', async () => {
    const a = createApplyLedger({ table, holder: 'a', leaseMs: 600_000, ttlSeconds: 3600 });
    const b = createApplyLedger({ table, holder: 'b', leaseMs: 600_000, ttlSeconds: 3600 });
    const id = crypto.randomUUID();
    expect(await a.claim(id)).toEqual({ status: 'claimed' });
    await b.release(id); // not b's: nothing happens
    expect(await b.claim(id)).toMatchObject({ status: 'held-elsewhere' });
    await a.release(id);
    expect(await b.claim(id)).toEqual({ status: 'claimed' });
  });

  it('isApplied: true for every instance once an id is marked applied (one write or with concurrent marks), never while held, and no longer past the ttl', async () => {
    let clock = Date.now();
    const opts = { table, leaseMs: 600_000, ttlSeconds: 60, now: () => clock };
    const a = createApplyLedger({ ...opts, holder: 'a' });
    const b = createApplyLedger({ ...opts, holder: 'b', batchApplied: true });
    const [one, two, never] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    expect(await a.isApplied(never)).toBe(false);
    expect(await a.claim(one)).toEqual({ status: 'claimed' });
    expect(await b.isApplied(one)).toBe(false);
    await a.applied(one);
    expect(await b.claim(two)).toEqual({ status: 'claimed' });
    await b.applied(two);
    for (const ledger of [a, b]) expect([await ledger.isApplied(one), await ledger.isApplied(two)]).toEqual([true, true]);
    clock += 61_000;
    expect([await a.isApplied(one), await b.isApplied(two)]).toEqual([false, false]);
  });
});

describe('delivery ledger', () => {
  it('counts attempts across instances, delivers once, and lets a failed (dead-lettered) delivery be redriven', async () => {
    let clock = Date.now();
    const opts = { table, leaseMs: 1000, ttlSeconds: 3600, now: () => clock };
    const a = createDeliveryLedger({ ...opts, holder: 'a' });
    const b = createDeliveryLedger({ ...opts, holder: 'b' });
    const id = crypto.randomUUID();
    expect(await a.begin(id)).toEqual({ status: 'go', attempt: 1 });
    expect(await b.begin(id)).toMatchObject({ status: 'busy' });
    await a.abandon(id, 1);
    expect(await b.begin(id)).toEqual({ status: 'go', attempt: 2 });
    clock += 1500; // b crashed mid-attempt
    expect(await a.begin(id)).toEqual({ status: 'go', attempt: 3 });
    await a.delivered(id, 202);
    expect(await b.begin(id)).toEqual({ status: 'delivered', httpStatus: 202 });

    const other = crypto.randomUUID();
    expect(await a.begin(other)).toEqual({ status: 'go', attempt: 1 });
    await a.failed(other, 'CR_EMR_HTTP_400');
    expect(await b.begin(other)).toEqual({ status: 'go', attempt: 2 });
  });

  it('a kept lease is renewed past its first term, and only for its own attempt: a later attempt (even by the same holder) makes it lost', async () => {
    const a = createDeliveryLedger({ table, holder: 'a', leaseMs: 600, renewMs: 50, ttlSeconds: 3600 });
    const b = createDeliveryLedger({ table, holder: 'b', leaseMs: 600, ttlSeconds: 3600 });
    const id = crypto.randomUUID();
    expect(await a.begin(id)).toEqual({ status: 'go', attempt: 1 });
    const first = Number((await table.get(`emr#${id}`))?.leaseUntil);
    const kept = a.keep(id, 1);
    await waitFor(() => Date.now() > first + 100, { intervalMs: 20, what: 'the first lease to run out' });
    expect(await b.begin(id), 'renewed: still busy past the first lease').toMatchObject({ status: 'busy' });
    await kept.stop();

    // This holder's lease lapsed (paused, not renewing) and a copy started attempt 2 here: attempt 1 is no longer held.
    await waitFor(async () => (await a.begin(id)).status === 'go', { intervalMs: 50, what: 'the lapsed lease to be taken over' });
    const stale = a.keep(id, 1);
    await waitFor(() => stale.lost.aborted, { what: 'the stale attempt to find its lease lost' });
    await stale.stop();
    await a.abandon(id, 1); // the stale attempt's abandon leaves attempt 2's lease alone
    expect(await b.begin(id)).toMatchObject({ status: 'busy' });
    expect(await table.get(`emr#${id}`)).toMatchObject({ state: 'delivering', holder: 'a', attempts: 2 });
  });
});

describe('dynamoEmergencyStore', () => {
  it('loads nothing before a save, then the last state saved by any instance', async () => {
    const fresh = openTestStateTable(backend, 'app');
    try {
      const one = dynamoEmergencyStore(fresh);
      const two = dynamoEmergencyStore(fresh);
      expect(await one.load()).toBeUndefined();
      await one.save({ active: true, changedAt: '2026-01-01T00:00:00.000Z', actor: 'admin', reason: 'key compromise drill' });
      expect(await two.load()).toEqual({ active: true, changedAt: '2026-01-01T00:00:00.000Z', actor: 'admin', reason: 'key compromise drill' });
      await two.save({ active: false, changedAt: '2026-01-01T01:00:00.000Z', actor: 'config' });
      expect(await one.load()).toEqual({ active: false, changedAt: '2026-01-01T01:00:00.000Z', actor: 'config' });
    } finally {
      await fresh.close();
    }
  });
});

describe('state table', () => {
  it('writes and reads back every kind of value the services store, undefined fields left out', async () => {
    const pk = key();
    const item = { pk, step: 'queued', at: 1_767_225_600_123, ttl: 1_767_312_000, ok: true, none: null, steps: [{ step: 'accepted', at: 1 }, { step: 'queued', at: 2, by: 'r-1' }], meta: { partner: 'acme', n: 0.5 }, gone: undefined };
    expect(await table.put(item, { condition: 'attribute_not_exists(pk)' })).toBe(true);
    const { gone: _gone, ...stored } = item;
    expect(await table.get(pk)).toEqual(stored);
    expect(await table.put({ ...item, step: 'again' }, { condition: 'attribute_not_exists(pk)' })).toBe(false);
    const updated = await table.update(pk, { update: 'SET #s = :s, #l = list_append(#l, :more)', condition: '#s = :was', names: { '#s': 'step', '#l': 'steps' }, values: { ':s': 'held', ':was': 'queued', ':more': [{ step: 'held', at: 3 }] } });
    expect(updated).toEqual({ ...stored, step: 'held', steps: [...stored.steps, { step: 'held', at: 3 }] });
    expect(await table.update(pk, { update: 'SET #s = :s', condition: '#s = :was', names: { '#s': 'step' }, values: { ':s': 'x', ':was': 'queued' } })).toBeUndefined();
    expect(await table.delete(pk, { condition: '#s = :s', names: { '#s': 'step' }, values: { ':s': 'queued' } })).toBe(false);
    expect(await table.delete(pk)).toBe(true);
    expect(await table.get(pk)).toBeUndefined();
  });

  it('concurrent calls of the same kind each carry their own input and get their own answer', async () => {
    // The client resolves each command's middleware once and reuses it: this would show a call sent with another's input.
    const pks = Array.from({ length: 20 }, () => key());
    await Promise.all(pks.map((pk, i) => table.put({ pk, n: i })));
    const got = await Promise.all(pks.map((pk, i) => table.update(pk, { update: 'SET #m = :m', names: { '#m': 'm' }, values: { ':m': i * 10 } })));
    expect(got).toEqual(pks.map((pk, i) => ({ pk, n: i, m: i * 10 })));
    expect(await Promise.all(pks.map((pk) => table.get(pk)))).toEqual(got);
    await table.putMany(pks.map((pk, i) => ({ pk, n: -i - 1 })));
    expect(await Promise.all(pks.map((pk) => table.get(pk)))).toEqual(pks.map((pk, i) => ({ pk, n: -i - 1 })));
  });

  it('check() names the missing table and the command that creates it', async () => {
    const missing = openStateTable({ table: `${backend.prefix}nope-state`, region: backend.region, endpoint: backend.dynamodbEndpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    try {
      await expect(missing.check()).rejects.toMatchObject({ code: 'CR_STATE_TABLE_MISSING', message: expect.stringContaining(`${backend.prefix}nope-state`) });
    } finally {
      await missing.close();
    }
  });
});
