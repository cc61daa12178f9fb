// IdempotencyCache: one create per (caller, key) and body; 409 on a reused key with
// another body; failures forgotten; expiry and the size bound; hostile keys refused.
import { describe, expect, it } from 'vitest';
import { IdempotencyCache } from '../../../services/core/relay/idempotency.ts';
import { RelayError } from '../../../services/core/errors/relayError.ts';

const body = (s: string): Buffer => Buffer.from(s, 'utf8');

function counter(): { create: () => Promise<string>; calls: () => number } {
  let n = 0;
  return { create: async () => `id-${++n}`, calls: () => n };
}

async function rejection(p: Promise<unknown>): Promise<RelayError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RelayError);
  return err as RelayError;
}

describe('IdempotencyCache', () => {
  it('without a key every request creates', async () => {
    const cache = new IdempotencyCache();
    const c = counter();
    expect(await cache.run('acme', undefined, body('a'), 'application/fhir+json', c.create)).toEqual({ id: 'id-1', replayed: false });
    expect(await cache.run('acme', undefined, body('a'), 'application/fhir+json', c.create)).toEqual({ id: 'id-2', replayed: false });
  });

  it('the same key and body answers the same id without creating again, also when concurrent', async () => {
    const cache = new IdempotencyCache();
    let calls = 0;
    let finish!: (id: string) => void;
    const create = () => (calls++, new Promise<string>((r) => (finish = r)));
    const a = cache.run('acme', 'k1', body('x'), 'application/fhir+json', create);
    const b = cache.run('acme', 'k1', body('x'), 'application/fhir+json', create);
    finish('id-A');
    expect(await a).toEqual({ id: 'id-A', replayed: false });
    expect(await b).toEqual({ id: 'id-A', replayed: true });
    expect(await cache.run('acme', 'k1', body('x'), 'application/fhir+json', create)).toEqual({ id: 'id-A', replayed: true });
    expect(calls).toBe(1);
  });

  it('a key reused with another body, or the same body as another content type, is 409 CR_IDEMPOTENCY_KEY_REUSED', async () => {
    const cache = new IdempotencyCache();
    const c = counter();
    await cache.run('acme', 'k1', body('x'), 'application/fhir+json', c.create);
    const other = await rejection(cache.run('acme', 'k1', body('y'), 'application/fhir+json', c.create));
    expect([other.code, other.status]).toEqual(['CR_IDEMPOTENCY_KEY_REUSED', 409]);
    const retyped = await rejection(cache.run('acme', 'k1', body('x'), 'application/xml', c.create));
    expect(retyped.code).toBe('CR_IDEMPOTENCY_KEY_REUSED');
    expect(c.calls()).toBe(1);
  });

  it('keys are per caller: two partners using the same key both create', async () => {
    const cache = new IdempotencyCache();
    const c = counter();
    expect((await cache.run('acme', 'k', body('x'), 't', c.create)).id).toBe('id-1');
    expect((await cache.run('globex', 'k', body('x'), 't', c.create)).id).toBe('id-2');
  });

  it('a failed create is forgotten, so the retry creates', async () => {
    const cache = new IdempotencyCache();
    await expect(cache.run('acme', 'k', body('x'), 't', async () => Promise.reject(new Error('SQS down')))).rejects.toThrow('SQS down');
    expect(await cache.run('acme', 'k', body('x'), 't', async () => 'id-2')).toEqual({ id: 'id-2', replayed: false });
  });

  it('forgets a key after its TTL', async () => {
    let now = 1_000;
    const cache = new IdempotencyCache({ ttlMs: 100, now: () => now });
    const c = counter();
    await cache.run('acme', 'k', body('x'), 't', c.create);
    now += 99;
    expect(await cache.run('acme', 'k', body('x'), 't', c.create)).toEqual({ id: 'id-1', replayed: true });
    now += 1;
    expect(await cache.run('acme', 'k', body('other body now allowed'), 't', c.create)).toEqual({ id: 'id-2', replayed: false });
  });

  it('keeps at most maxEntries keys, forgetting the oldest first', async () => {
    const cache = new IdempotencyCache({ maxEntries: 2 });
    const c = counter();
    for (const k of ['a', 'b', 'c']) await cache.run('acme', k, body('x'), 't', c.create);
    expect(await cache.run('acme', 'c', body('x'), 't', c.create)).toEqual({ id: 'id-3', replayed: true });
    expect(await cache.run('acme', 'b', body('x'), 't', c.create)).toEqual({ id: 'id-2', replayed: true });
    expect(await cache.run('acme', 'a', body('x'), 't', c.create)).toEqual({ id: 'id-4', replayed: false });
  });

  it('refuses hostile keys with 400 CR_IDEMPOTENCY_KEY_INVALID, without echoing them', async () => {
    const cache = new IdempotencyCache();
    const c = counter();
    for (const key of ['', 'a'.repeat(201), 'has space', 'new\nline', 'nul\u0000', 'ünïcode', 'patient-Jane Roe']) {
      const err = await rejection(cache.run('acme', key, body('x'), 't', c.create));
      expect([err.code, err.status], JSON.stringify(key)).toEqual(['CR_IDEMPOTENCY_KEY_INVALID', 400]);
      if (key.length > 3) expect(err.message).not.toContain(key);
    }
    expect(c.calls()).toBe(0);
    expect((await cache.run('acme', 'a'.repeat(200), body('x'), 't', c.create)).id).toBe('id-1');
  });
});
