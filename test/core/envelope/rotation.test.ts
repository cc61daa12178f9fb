import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvelopeError } from '../../../services/core/envelope/errors.ts';
import { open, openMessage } from '../../../services/core/envelope/open.ts';
import { seal } from '../../../services/core/envelope/seal.ts';
import { writePrivateKeyFile, writePublicKeyFile } from '../../../services/core/keys/files.ts';
import { generateServiceKey } from '../../../services/core/keys/generate.ts';
import { ownKeyring, peerEncryptionKey, peerKeyring } from '../../../services/core/keys/keyring.ts';
import { loadServiceKeys, type ServiceKeys } from '../../../services/core/keys/load.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';
import { appContext, sampleEnvelope } from './craft.ts';

let keys: TestServiceKeyPair;
/** The app after rotating: new private.asc, the old one kept as private-*.asc. */
let rotatedApp: ServiceKeys;
/** The interface after pinning the app's new key beside the old one. */
let interfaceWithBoth: ServiceKeys;
let newAppFingerprint: string;

beforeAll(async () => {
  keys = await makeServiceKeyPair({ fresh: true });
  // Rotate the app exactly as `care-relay keys rotate` lays it out.
  const fresh = await generateServiceKey({ service: 'app', passphrase: keys.app.passphrase, date: new Date(Date.now() + 1000) });
  newAppFingerprint = fresh.fingerprint;
  await rename(join(keys.app.dir, 'private.asc'), join(keys.app.dir, 'private-20260101T000000Z.asc'));
  await writePrivateKeyFile(join(keys.app.dir, 'private.asc'), fresh.privateKey);
  await writePublicKeyFile(join(keys.app.dir, 'public.asc'), fresh.publicKey, { overwrite: true });
  rotatedApp = await loadServiceKeys({ dir: keys.app.dir, passphrase: keys.app.passphrase, now: new Date(Date.now() + 2000) });
  await writePublicKeyFile(join(keys.interface.dir, 'peers', `app-${fresh.fingerprint.slice(-16)}.asc`), fresh.publicKey);
  interfaceWithBoth = await loadServiceKeys({ dir: keys.interface.dir, passphrase: keys.interface.passphrase, now: new Date(Date.now() + 2000) });
});
afterAll(() => keys.cleanup());

describe('rotation overlap', () => {
  it('loads the new key as current and the old one as decrypt-only', () => {
    expect(rotatedApp.own.fingerprint).toBe(newAppFingerprint);
    expect(rotatedApp.own.older.map((k) => k.getFingerprint().toUpperCase())).toEqual([keys.app.fingerprint]);
    expect(interfaceWithBoth.peers.pinned.map((p) => p.fingerprint)).toEqual([newAppFingerprint, keys.app.fingerprint]);
  });

  it('the old own key still decrypts what the peer encrypted to it before learning the new key', async () => {
    const envelope = sampleEnvelope();
    const sealed = await seal(envelope, keys.interface.own, keys.interface.peers);
    expect(await open(sealed.body, appContext(keys.app, { own: rotatedApp.own, peers: rotatedApp.peers }))).toEqual(envelope);
  });

  it('with two pinned keys the peer encrypts to the newest', async () => {
    const now = new Date(Date.now() + 2000);
    expect((await peerEncryptionKey(interfaceWithBoth.peers, now)).fingerprint).toBe(newAppFingerprint);
    const sealed = await seal(sampleEnvelope(), interfaceWithBoth.own, interfaceWithBoth.peers, { now });
    const onlyNew = ownKeyring(rotatedApp.own.current);
    const onlyOld = ownKeyring(keys.app.own.current);
    await expect(open(sealed.body, appContext(keys.app, { own: onlyNew, now }))).resolves.toBeDefined();
    await expect(open(sealed.body, appContext(keys.app, { own: onlyOld, now }))).rejects.toMatchObject({ code: 'CR_ENVELOPE_UNDECRYPTABLE' });
  });

  it('signatures by either of two pinned peer keys are accepted, and the signer is reported', async () => {
    const now = new Date(Date.now() + 2000);
    // The interface sees the app's old and new keys pinned; the app signs with each in turn.
    const interfaceCtx = { own: interfaceWithBoth.own, peers: interfaceWithBoth.peers, self: 'interface', queue: 'app-to-interface', maxSkewMs: 60_000, maxAgeMs: 60_000, now };
    const env = () => sampleEnvelope({ from: 'app', to: 'interface', queue: 'app-to-interface' }, now);
    const byNew = await seal(env(), rotatedApp.own, rotatedApp.peers, { now });
    const byOld = await seal(env(), keys.app.own, keys.app.peers, { now });
    expect(byNew.attributes['cr-signer'].StringValue).toBe(newAppFingerprint);
    expect((await openMessage(byNew.body, interfaceCtx)).signer.fingerprint).toBe(newAppFingerprint);
    expect((await openMessage(byOld.body, interfaceCtx)).signer.fingerprint).toBe(keys.app.fingerprint);
    // Once the old pin is removed, the old key is no longer accepted.
    const newOnly = peerKeyring(interfaceWithBoth.peers.pinned.filter((p) => p.fingerprint === newAppFingerprint));
    const err = await open(byOld.body, { ...interfaceCtx, peers: newOnly }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvelopeError);
    expect((err as EnvelopeError).code).toBe('CR_ENVELOPE_SIGNER_NOT_PINNED');
  });

  it('skips a newest pinned key that has expired and encrypts to the older valid one', async () => {
    const base = Date.now() + 5000;
    const expiring = await generateServiceKey({ service: 'app', passphrase: 'p', date: new Date(base), keyExpirationTime: 60 });
    const { readKey } = await import('openpgp');
    const newest = await readKey({ armoredKey: expiring.publicKey });
    const peers = peerKeyring([...keys.interface.peers.pinned, { name: 'app-next', key: newest }]);
    expect(peers.pinned[0]!.fingerprint).toBe(expiring.fingerprint);
    expect((await peerEncryptionKey(peers, new Date(base + 10_000))).fingerprint).toBe(expiring.fingerprint);
    const chosen = await peerEncryptionKey(peers, new Date(base + 120_000));
    expect(chosen.fingerprint).toBe(keys.app.fingerprint);
  });
});
