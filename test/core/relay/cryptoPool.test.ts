import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope, type Envelope } from '../../../services/core/envelope/envelope.ts';
import { EnvelopeError } from '../../../services/core/envelope/errors.ts';
import { KeyError } from '../../../services/core/keys/errors.ts';
import { localCrypto, type OpenLimits } from '../../../services/core/relay/crypto.ts';
import { createCryptoPool, DEFAULT_TASKS_PER_THREAD, DEFAULT_WORKER_LIMITS, type CryptoPool } from '../../../services/core/relay/cryptoPool.ts';
import { MAX_PAYLOAD_BYTES } from '../../../services/core/relay/outbound.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';
import { startStack } from '../../helpers/stack.ts';
import { waitFor } from '../../helpers/wait.ts';

const limits = (self: string): OpenLimits => ({ self, maxSkewMs: 60_000, maxAgeMs: 3_600_000 });

function submission(body = '{"resourceType":"Patient"}'): Envelope {
  return buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', partner: 'acme-health', contentType: 'application/fhir+json', body });
}

/** The EnvelopeError code `open` rejects with, or a test failure. */
async function rejection(p: Promise<unknown>): Promise<EnvelopeError> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof EnvelopeError)) throw new Error(`not an EnvelopeError: ${String(err)}`, { cause: err });
    return err;
  }
  throw new Error('a bad message was accepted');
}

describe('crypto worker pool', () => {
  let keys: TestServiceKeyPair;
  let iface: CryptoPool;
  let app: CryptoPool;

  beforeAll(async () => {
    keys = await makeServiceKeyPair();
    [iface, app] = await Promise.all([
      createCryptoPool({ keysDir: keys.interface.dir, passphrase: keys.interface.passphrase, limits: limits('interface'), threads: 2 }),
      createCryptoPool({ keysDir: keys.app.dir, passphrase: keys.app.passphrase, limits: limits('app'), threads: 2 }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([iface?.close(), app?.close()]);
    await keys.cleanup();
  });

  it('round-trips seal → open through the workers, also with the in-thread crypto on either side', async () => {
    const envelope = submission();
    const sealed = await iface.seal(envelope);
    expect(sealed.body).toMatch(/^-----BEGIN PGP MESSAGE-----/);
    expect(sealed.attributes['cr-envelope-id']?.StringValue).toBe(envelope.id);
    expect(sealed.attributes['cr-signer']?.StringValue).toBe(keys.interface.fingerprint);
    expect(await app.open(sealed.body, { queue: 'interface-to-app' })).toEqual(envelope);

    const inThread = localCrypto({ own: keys.app.own, peers: keys.app.peers }, limits('app'));
    expect(await inThread.open(sealed.body, { queue: 'interface-to-app' })).toEqual(envelope);
    const sealedHere = await localCrypto({ own: keys.interface.own, peers: keys.interface.peers }, limits('interface')).seal(envelope);
    expect(await app.open(sealedHere.body, { queue: 'interface-to-app' })).toEqual(envelope);
  });

  it('many messages at once, more than the workers take at a time, all come back right', async () => {
    const envelopes = Array.from({ length: 24 }, (_, i) => submission(`{"n":${i}}`));
    const sealed = await Promise.all(envelopes.map((e) => iface.seal(e)));
    const opened = await Promise.all(sealed.map((s) => app.open(s.body, { queue: 'interface-to-app' })));
    expect(opened.map((e) => e.id)).toEqual(envelopes.map((e) => e.id));
  });

  it('with the small young generation of the workers (DEFAULT_WORKER_LIMITS), the largest payload still seals and opens, as many at once as the workers take', async () => {
    expect(DEFAULT_WORKER_LIMITS.maxYoungGenerationSizeMb).toBeGreaterThan(0);
    expect(DEFAULT_WORKER_LIMITS.maxOldGenerationSizeMb).toBeUndefined();
    const big = submission(JSON.stringify({ resourceType: 'Binary', data: 'x'.repeat(MAX_PAYLOAD_BYTES - 64) }));
    // Every worker running its DEFAULT_TASKS_PER_THREAD tasks at once, each on the largest payload.
    const atOnce = app.threads * DEFAULT_TASKS_PER_THREAD;
    const sealed = await Promise.all(Array.from({ length: atOnce }, () => iface.seal(big)));
    const opened = await Promise.all(sealed.map((s) => app.open(s.body, { queue: 'interface-to-app' })));
    expect(opened.map((e) => e.sha256)).toEqual(Array.from({ length: atOnce }, () => big.sha256));
    expect(app.threads).toBe(2);
  });

  it('an EnvelopeError from a worker comes back as an EnvelopeError with the code the in-thread open gives', async () => {
    const inThread = localCrypto({ own: keys.app.own, peers: keys.app.peers }, limits('app'));
    const { body } = await iface.seal(submission());
    // A damaged armor line, a wrong queue, the wrong recipient, and a message from the future.
    const at = body.indexOf('\n\n') + 10;
    const tampered = body.slice(0, at) + (body[at] === 'A' ? 'B' : 'A') + body.slice(at + 1);
    const cases: Array<[string, (c: typeof inThread) => Promise<unknown>]> = [
      ['tampered', (c) => c.open(tampered, { queue: 'interface-to-app' })],
      ['wrong queue', (c) => c.open(body, { queue: 'app-to-interface' })],
      ['not armored', (c) => c.open('hello', { queue: 'interface-to-app' })],
      ['from the future', (c) => c.open(body, { queue: 'interface-to-app', now: new Date(Date.now() - 3_600_000) })],
    ];
    for (const [what, attempt] of cases) {
      const expected = await rejection(attempt(inThread));
      const got = await rejection(attempt(app));
      expect(got.code, what).toBe(expected.code);
      expect(got.message, what).toBe(expected.message);
      expect(got.name).toBe('EnvelopeError');
    }
    // Opened by the wrong side: the interface cannot decrypt what was sealed for the app.
    expect((await rejection(iface.open(body, { queue: 'interface-to-app' }))).code).toBe('CR_ENVELOPE_UNDECRYPTABLE');
  });

  it('seal refuses a bad envelope with the same EnvelopeError code as in-thread', async () => {
    const bad = { ...submission(), sha256: '0'.repeat(64) };
    expect((await rejection(iface.seal(bad))).code).toBe('CR_ENVELOPE_DIGEST_MISMATCH');
  });

  it('a wrong passphrase fails the start with the KeyError of the key loader, and leaves no worker behind', async () => {
    const err = await createCryptoPool({ keysDir: keys.app.dir, passphrase: 'not-the-passphrase', limits: limits('app'), threads: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KeyError);
    expect((err as KeyError).code).toBe('CR_KEY_WRONG_PASSPHRASE');
    expect((err as KeyError).message).not.toContain('not-the-passphrase');
  });

  it('close() releases the workers; the pool refuses work afterwards', async () => {
    const pool = await createCryptoPool({ keysDir: keys.app.dir, passphrase: keys.app.passphrase, limits: limits('app'), threads: 2 });
    expect(pool.threads).toBe(2);
    await pool.close();
    expect(pool.threads).toBe(0);
    await expect(pool.seal(submission())).rejects.toThrow('crypto pool is closed');
    expect(pool.threads).toBe(0);
    await pool.close(); // idempotent
  });
});

describe('a stack with CRYPTO_WORKERS=2', () => {
  it('relays a submission into the app inbox through the worker pools', async () => {
    const stack = await startStack({ ifaceEnv: { CRYPTO_WORKERS: '2' }, appEnv: { CRYPTO_WORKERS: '2' } });
    try {
      expect((stack.iface.runtime.crypto as CryptoPool).threads).toBe(2);
      expect((stack.app.runtime.crypto as CryptoPool).threads).toBe(2);
      const res = await stack.iface.server.inject({
        method: 'POST',
        url: '/v1/submissions',
        headers: { authorization: `Bearer ${stack.tokens.partner}`, 'content-type': 'application/fhir+json' },
        payload: '{"resourceType":"Patient","id":"p1"}',
      });
      expect(res.statusCode, res.body).toBe(202);
      const { id } = res.json<{ id: string }>();
      const held = await waitFor(() => stack.app.inbox.get(id), { what: 'the record in the inbox' });
      expect(held.body).toBe('{"resourceType":"Patient","id":"p1"}');
      expect(stack.app.inbox.ack(id)).toBe(true);
    } finally {
      await stack.stop();
    }
  });
});
