// Idempotency-Key claims (services/core/relay/idempotency.ts) on a real state table: one
// envelope per (caller, key) and body; 409 on a reused key with another body or content
// type; a failed send is retried with the same id; a key is forgotten after its TTL;
// hostile keys refused without touching the table. Across instances: test/core/state.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayError } from '../../../services/core/errors/relayError.ts';
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

/** A create that records the envelope ids it was asked to send. */
function recorder(): { create: (id: string) => Promise<string>; sent: string[] } {
  const sent: string[] = [];
  return { create: async (id) => (sent.push(id), id), sent };
}

async function rejection(p: Promise<unknown>): Promise<RelayError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RelayError);
  return err as RelayError;
}

describe('Idempotency-Key claims', () => {
  it('without a key every request sends, each with a fresh id', async () => {
    const idem = createIdempotency({ table, ttlSeconds: 3600 });
    const r = recorder();
    const a = await idem.run('acme', undefined, body('a'), 'application/fhir+json', r.create);
    const b = await idem.run('acme', undefined, body('a'), 'application/fhir+json', r.create);
    expect(a.replayed || b.replayed).toBe(false);
    expect(a.id).not.toBe(b.id);
    expect(r.sent).toEqual([a.id, b.id]);
  });

  it('the same key and body answer the same id without sending again, also when concurrent', async () => {
    const idem = createIdempotency({ table, ttlSeconds: 3600, pollMs: 10 });
    const r = recorder();
    const k = key();
    const [a, b] = await Promise.all([idem.run('acme', k, body('x'), 'application/fhir+json', r.create), idem.run('acme', k, body('x'), 'application/fhir+json', r.create)]);
    expect(a.id).toBe(b.id);
    expect([a.replayed, b.replayed].sort()).toEqual([false, true]);
    expect(await idem.run('acme', k, body('x'), 'application/fhir+json', r.create)).toEqual({ id: a.id, replayed: true });
    expect(r.sent).toEqual([a.id]);
  });

  it('a key reused with another body, or the same body as another content type, is 409 CR_IDEMPOTENCY_KEY_REUSED', async () => {
    const idem = createIdempotency({ table, ttlSeconds: 3600 });
    const r = recorder();
    const k = key();
    await idem.run('acme', k, body('x'), 'application/fhir+json', r.create);
    const other = await rejection(idem.run('acme', k, body('y'), 'application/fhir+json', r.create));
    expect([other.code, other.status]).toEqual(['CR_IDEMPOTENCY_KEY_REUSED', 409]);
    const retyped = await rejection(idem.run('acme', k, body('x'), 'application/xml', r.create));
    expect(retyped.code).toBe('CR_IDEMPOTENCY_KEY_REUSED');
    expect(r.sent).toHaveLength(1);
  });

  it('keys are per caller: two partners using the same key both send', async () => {
    const idem = createIdempotency({ table, ttlSeconds: 3600 });
    const r = recorder();
    const k = key();
    const a = await idem.run('acme', k, body('x'), 't', r.create);
    const b = await idem.run('globex', k, body('x'), 't', r.create);
    expect(a.id).not.toBe(b.id);
    expect(r.sent).toEqual([a.id, b.id]);
  });

  it('a failed send is not remembered as sent: the retry sends again, with the same envelope id', async () => {
    const idem = createIdempotency({ table, ttlSeconds: 3600 });
    const k = key();
    let first = '';
    await expect(idem.run('acme', k, body('x'), 't', async (id) => ((first = id), Promise.reject(new Error('SQS down'))))).rejects.toThrow('SQS down');
    const r = recorder();
    expect(await idem.run('acme', k, body('x'), 't', r.create)).toEqual({ id: first, replayed: true });
    expect(r.sent).toEqual([first]);
  });

  it('forgets a key after its TTL (an expired item counts as absent even before DynamoDB deletes it)', async () => {
    let now = Date.now();
    const idem = createIdempotency({ table, ttlSeconds: 60, now: () => now });
    const r = recorder();
    const k = key();
    const first = await idem.run('acme', k, body('x'), 't', r.create);
    now += 30_000;
    expect(await idem.run('acme', k, body('x'), 't', r.create)).toEqual({ id: first.id, replayed: true });
    now += 32_000;
    const later = await idem.run('acme', k, body('other body now allowed'), 't', r.create);
    expect(later.replayed).toBe(false);
    expect(later.id).not.toBe(first.id);
  });

  it('refuses hostile keys with 400 CR_IDEMPOTENCY_KEY_INVALID, without echoing them or sending', async () => {
    const idem = createIdempotency({ table, ttlSeconds: 3600 });
    const r = recorder();
    for (const k of ['', 'a'.repeat(201), 'has space', 'new\nline', 'nul\u0000', 'ünïcode', 'patient-Jane Roe']) {
      const err = await rejection(idem.run('acme', k, body('x'), 't', r.create));
      expect([err.code, err.status], JSON.stringify(k)).toEqual(['CR_IDEMPOTENCY_KEY_INVALID', 400]);
      if (k.length > 3) expect(err.message).not.toContain(k);
    }
    expect(r.sent).toHaveLength(0);
    expect((await idem.run('acme', `${key()}${'a'.repeat(186)}`, body('x'), 't', r.create)).replayed).toBe(false);
  });
});
