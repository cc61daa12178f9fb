import { readKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seal } from '../../../services/core/envelope/seal.ts';
import { SEAL_KEY_CHECK_REUSE_MS } from '../../../services/core/envelope/sealKeys.ts';
import { KeyError } from '../../../services/core/keys/errors.ts';
import { generateServiceKey } from '../../../services/core/keys/generate.ts';
import { peerKeyring, type PeerKeyring } from '../../../services/core/keys/keyring.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';
import { sampleEnvelope } from './craft.ts';

let keys: TestServiceKeyPair;
let expiringPeers: PeerKeyring;
let base: number;
let expiry: number;
beforeAll(async () => {
  keys = await makeServiceKeyPair();
  base = Date.now() + 5000;
  const expiring = await generateServiceKey({ service: 'app', passphrase: 'p', date: new Date(base), keyExpirationTime: 60 });
  const key = await readKey({ armoredKey: expiring.publicKey });
  expiringPeers = peerKeyring([{ name: 'app', key }]);
  expiry = ((await key.getExpirationTime()) as Date).getTime(); // creation time is whole seconds
});
afterAll(() => keys.cleanup());

async function sealAt(ms: number): Promise<unknown> {
  return seal(sampleEnvelope({}, new Date(ms)), keys.interface.own, expiringPeers, { now: new Date(ms) }).then(
    (s) => s,
    (e: unknown) => e,
  );
}

describe('seal reuses its key check for a second, and never encrypts to an expired key', () => {
  it('refuses a peer key that expired inside the reuse window (openpgp.js checks again), then names the expiry', async () => {
    const ok = await sealAt(expiry - 300);
    expect(ok).toHaveProperty('body');
    // Inside the window the cached answer says "valid", but openpgp.js's own check at `now` refuses.
    const inWindow = await sealAt(expiry + 300);
    expect(SEAL_KEY_CHECK_REUSE_MS).toBeGreaterThan(600);
    expect(inWindow).toBeInstanceOf(KeyError);
    expect((inWindow as KeyError).code).toBe('CR_KEY_NOT_A_KEY');
    // After the window the check runs again and says why.
    const after = await sealAt(expiry - 300 + SEAL_KEY_CHECK_REUSE_MS + 1);
    expect(after).toBeInstanceOf(KeyError);
    expect((after as KeyError).code).toBe('CR_KEY_EXPIRED');
  });

  it('does not reuse a check made for other peer keys', async () => {
    const now = Date.now();
    expect(await sealAt(now)).toBeInstanceOf(KeyError); // expiringPeers' key is not valid yet at now (created at base)
    const err = await seal(sampleEnvelope(), keys.interface.own, peerKeyring([]), { now: new Date(now) }).catch((e: unknown) => e);
    expect((err as KeyError).code).toBe('CR_KEY_NO_PEERS');
    expect(await seal(sampleEnvelope(), keys.interface.own, keys.interface.peers, { now: new Date(now) })).toHaveProperty('body');
  });
});
