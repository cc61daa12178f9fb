// Idempotency-Key claims (services/core/relay/idempotency.ts) on a real state table: one
// envelope per (caller, key) and body; 409 on a reused key with another body or content
// type; a claim is settled by its envelope's status, with no write of its own; a failed send
// is retried with the same id; a key is forgotten after its TTL; hostile keys refused without
// touching the table. Across instances: test/core/state.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayError } from '../../../services/core/errors/relayError.ts';
import { uuidv7 } from '../../../services/core/envelope/uuidv7.ts';
import { createIdempotency } from '../../../services/core/relay/idempotency.ts';
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

const body = (s: string): Buffer => Buffer.from(s, 'utf8');
const key = (): string => `k-${randomBytes(6).toString('hex')}`;

/**
 * A create that records the envelope ids it was asked to send, and the status it leaves: as the
 * services' sends do, a send that resolved left its envelope's status at `queued` (`onItsWay`, the
 * claims' `sent`). `statusFails` makes the sends leave no status, as when that write failed.
 */
function recorder(statusFails = false): { create: (id: string) => Promise<string>; sent: string[]; onItsWay: (id: string) => Promise<boolean> } {
  const sent: string[] = [];
  const queued = new Set<string>();
  return {
    create: async (id) => (sent.push(id), statusFails || queued.add(id), id),
    sent,
    onItsWay: async (id) => queued.has(id),
  };
}

async function rejection(p: Promise<unknown>): Promise<RelayError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RelayError);
  return err as RelayError;
}

describe('Idempotency-Key claims', () => {
  it('without a key every request sends, each with a fresh id', async () => {
    const r = recorder();
    const idem = createIdempotency({ table, ttlSeconds: 3600, sent: r.onItsWay });
    const a = await idem.run('acme', undefined, body('a'), 'application/fhir+json', r.create);
    const b = await idem.run('acme', undefined, body('a'), 'application/fhir+json', r.create);
    expect(a.replayed || b.replayed).toBe(false);
    expect(a.created && b.created).toBe(true);
    expect(a.id).not.toBe(b.id);
    expect(r.sent).toEqual([a.id, b.id]);
  });

  it('the same key and body answer the same id without sending again, also when concurrent (created says which call sent)', async () => {
    const r = recorder();
    const idem = createIdempotency({ table, ttlSeconds: 3600, pollMs: 10, sent: r.onItsWay });
    const k = key();
    const [a, b] = await Promise.all([idem.run('acme', k, body('x'), 'application/fhir+json', r.create), idem.run('acme', k, body('x'), 'application/fhir+json', r.create)]);
    expect(a.id).toBe(b.id);
    expect([a.replayed, b.replayed].sort()).toEqual([false, true]);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(await idem.run('acme', k, body('x'), 'application/fhir+json', r.create)).toEqual({ id: a.id, replayed: true, created: false });
    expect(r.sent).toEqual([a.id]);
  });

  it('a key reused with another body, or the same body as another content type, is 409 CR_IDEMPOTENCY_KEY_REUSED', async () => {
    const r = recorder();
    const idem = createIdempotency({ table, ttlSeconds: 3600, sent: r.onItsWay });
    const k = key();
    await idem.run('acme', k, body('x'), 'application/fhir+json', r.create);
    const other = await rejection(idem.run('acme', k, body('y'), 'application/fhir+json', r.create));
    expect([other.code, other.status]).toEqual(['CR_IDEMPOTENCY_KEY_REUSED', 409]);
    const retyped = await rejection(idem.run('acme', k, body('x'), 'application/xml', r.create));
    expect(retyped.code).toBe('CR_IDEMPOTENCY_KEY_REUSED');
    expect(r.sent).toHaveLength(1);
  });

  it('keys are per caller: two partners using the same key both send', async () => {
    const r = recorder();
    const idem = createIdempotency({ table, ttlSeconds: 3600, sent: r.onItsWay });
    const k = key();
    const a = await idem.run('acme', k, body('x'), 't', r.create);
    const b = await idem.run('globex', k, body('x'), 't', r.create);
    expect(a.id).not.toBe(b.id);
    expect(r.sent).toEqual([a.id, b.id]);
  });

  it('a failed send is not remembered as sent: the retry sends again, with the same envelope id', async () => {
    const r = recorder();
    const idem = createIdempotency({ table, ttlSeconds: 3600, sent: r.onItsWay });
    const k = key();
    let first = '';
    await expect(idem.run('acme', k, body('x'), 't', async (id) => ((first = id), Promise.reject(new Error('SQS down'))))).rejects.toThrow('SQS down');
    expect(await idem.run('acme', k, body('x'), 't', r.create)).toEqual({ id: first, replayed: true, created: true });
    expect(r.sent).toEqual([first]);
  });

  it('forgets a key after its TTL (an expired item counts as absent even before DynamoDB deletes it)', async () => {
    let now = Date.now();
    const r = recorder();
    const idem = createIdempotency({ table, ttlSeconds: 60, now: () => now, sent: r.onItsWay });
    const k = key();
    const first = await idem.run('acme', k, body('x'), 't', r.create);
    now += 30_000;
    expect(await idem.run('acme', k, body('x'), 't', r.create)).toEqual({ id: first.id, replayed: true, created: false });
    now += 32_000;
    const later = await idem.run('acme', k, body('other body now allowed'), 't', r.create);
    expect(later.replayed).toBe(false);
    expect(later.id).not.toBe(first.id);
  });

  it('refuses hostile keys with 400 CR_IDEMPOTENCY_KEY_INVALID, without echoing them or sending', async () => {
    const r = recorder();
    const idem = createIdempotency({ table, ttlSeconds: 3600, sent: r.onItsWay });
    for (const k of ['', 'a'.repeat(201), 'has space', 'new\nline', 'nul\u0000', 'ünïcode', 'patient-Jane Roe']) {
      const err = await rejection(idem.run('acme', k, body('x'), 't', r.create));
      expect([err.code, err.status], JSON.stringify(k)).toEqual(['CR_IDEMPOTENCY_KEY_INVALID', 400]);
      if (k.length > 3) expect(err.message).not.toContain(k);
    }
    expect(r.sent).toHaveLength(0);
    expect((await idem.run('acme', `${key()}${'a'.repeat(186)}`, body('x'), 't', r.create)).replayed).toBe(false);
  });
  it('a send that succeeded writes nothing after its claim: the status of its envelope settles it for every later request', async () => {
    const r = recorder();
    const writes: string[] = [];
    const counted: StateTable = {
      ...table,
      put: (item, condition) => (writes.push(`put ${String(item.pk).split('#')[0]}`), table.put(item, condition)),
      update: (pk, change) => (writes.push(`update ${pk.split('#')[0]}`), table.update(pk, change)),
    };
    const idem = createIdempotency({ table: counted, ttlSeconds: 3600, sent: r.onItsWay });
    const k = key();
    const first = await idem.run('acme', k, body('x'), 't', r.create);
    expect(writes).toEqual(['put idem']);
    expect(await idem.run('acme', k, body('x'), 't', r.create)).toEqual({ id: first.id, replayed: true, created: false });
    expect(r.sent).toEqual([first.id]);
    // The retry's only write was its claim, refused: nothing else was written for the key.
    expect(writes).toEqual(['put idem', 'put idem']);
  });

  it('a send whose status could not be written: a retry waits for the lease, then sends the same envelope id again', async () => {
    let clock = Date.now();
    const r = recorder(true);
    let asked = 0;
    const idem = createIdempotency({ table, ttlSeconds: 3600, leaseMs: 1000, pollMs: 5, now: () => clock, sent: (id) => (asked++, r.onItsWay(id)) });
    const k = key();
    const first = await idem.run('acme', k, body('x'), 't', r.create);
    // Within the lease the retry waits for the claim's outcome, asking again each time: then the lease runs out.
    const retry = idem.run('acme', k, body('x'), 't', r.create);
    await expect.poll(() => asked).toBeGreaterThanOrEqual(3);
    expect(r.sent).toEqual([first.id]);
    clock += 1500;
    expect(await retry).toEqual({ id: first.id, replayed: true, created: true });
    expect(r.sent).toEqual([first.id, first.id]);
  });

  it('a claim marked queued on its own item (as earlier versions wrote it) answers its id without asking the status', async () => {
    const k = key();
    const envelopeId = uuidv7();
    const digest = createHash('sha256').update('t').update('\u0000').update(body('x')).digest('hex');
    const t = Date.now();
    await table.put({ pk: `idem#acme#${k}`, state: 'queued', envelopeId, digest, lease: t, ttl: Math.floor(t / 1000) + 3600 });
    const idem = createIdempotency({ table, ttlSeconds: 3600, sent: async () => expect.fail('the status was asked') });
    const r = recorder();
    expect(await idem.run('acme', k, body('x'), 't', r.create)).toEqual({ id: envelopeId, replayed: true, created: false });
    expect(r.sent).toEqual([]);
  });
});
