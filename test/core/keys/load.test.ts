import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decryptKey, readPrivateKey, revokeKey, encryptKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyError, type KeyErrorCode } from '../../../services/core/keys/errors.ts';
import { writePrivateKeyFile, writeServiceKeyFolder } from '../../../services/core/keys/files.ts';
import { generateServiceKey } from '../../../services/core/keys/generate.ts';
import { loadServiceKeys, readPublicKeyFile } from '../../../services/core/keys/load.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';

let keys: TestServiceKeyPair;
let scratch: string;

beforeAll(async () => {
  keys = await makeServiceKeyPair();
  scratch = await mkdtemp(join(tmpdir(), 'cr-keyload-'));
});
afterAll(async () => {
  await keys.cleanup();
  await rm(scratch, { recursive: true, force: true });
});

let n = 0;
/** A copy of the app folder to break in one way. */
async function appCopy(): Promise<string> {
  const dir = join(scratch, `app${n++}`);
  await writeServiceKeyFolder({ dir, privateKey: keys.app.privateKey, publicKey: keys.app.publicKey, peers: [{ name: 'interface', publicKey: keys.interface.publicKey }] });
  return dir;
}

async function loadError(dir: string, passphrase: string = keys.app.passphrase): Promise<KeyError> {
  const err = await loadServiceKeys({ dir, passphrase }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KeyError);
  const message = (err as KeyError).message;
  expect(message).not.toMatch(/\n/);
  expect(message).not.toContain(keys.app.passphrase);
  expect(message).not.toMatch(/BEGIN PGP/);
  return err as KeyError;
}

async function expectCode(dir: string, code: KeyErrorCode, file: RegExp, passphrase?: string): Promise<void> {
  const err = await loadError(dir, passphrase);
  expect(err.code).toBe(code);
  expect(err.message).toMatch(file);
}

describe('loadServiceKeys', () => {
  it('loads own and pinned peer keys', async () => {
    const loaded = await loadServiceKeys({ dir: keys.app.dir, passphrase: keys.app.passphrase });
    expect(loaded.own.fingerprint).toBe(keys.app.fingerprint);
    expect(loaded.own.current.isDecrypted()).toBe(true);
    expect(loaded.own.older).toEqual([]);
    expect(loaded.peers.pinned).toHaveLength(1);
    expect(loaded.peers.pinned[0]).toMatchObject({ name: 'interface', fingerprint: keys.interface.fingerprint });
    expect(loaded.peers.pinned[0]!.key.isPrivate()).toBe(false);
  });

  it('accepts a list of passphrases (a passphrase change)', async () => {
    await expect(loadServiceKeys({ dir: keys.app.dir, passphrase: ['old-one', keys.app.passphrase] })).resolves.toBeDefined();
  });

  it('CR_KEY_FILE_MISSING: no private.asc', async () => {
    await expectCode(join(scratch, 'nowhere'), 'CR_KEY_FILE_MISSING', /nowhere\/private\.asc: file not found/);
  });

  it('CR_KEY_UNREADABLE: private.asc cannot be read', async () => {
    const dir = await appCopy();
    await rm(join(dir, 'private.asc'));
    await mkdir(join(dir, 'private.asc'));
    await expectCode(dir, 'CR_KEY_UNREADABLE', /private\.asc: cannot read the file \(EISDIR\)/);
  });

  it('CR_KEY_NOT_A_KEY: garbage, or two keys in one file', async () => {
    const dir = await appCopy();
    await writeFile(join(dir, 'private.asc'), 'not a key\n');
    await expectCode(dir, 'CR_KEY_NOT_A_KEY', /private\.asc: not an ASCII-armored OpenPGP key/);
    await writeFile(join(dir, 'peers', 'interface.asc'), keys.interface.publicKey + keys.app.publicKey);
    await writeFile(join(dir, 'private.asc'), keys.app.privateKey);
    await expectCode(dir, 'CR_KEY_NOT_A_KEY', /interface\.asc: holds 2 armored blocks/);
  });

  it('CR_KEY_NOT_PRIVATE: a public key as private.asc', async () => {
    const dir = await appCopy();
    await copyFile(join(dir, 'public.asc'), join(dir, 'private.asc'));
    await expectCode(dir, 'CR_KEY_NOT_PRIVATE', /private\.asc: is a public key/);
  });

  it('CR_KEY_NOT_PUBLIC: a private key under peers/', async () => {
    const dir = await appCopy();
    await writeFile(join(dir, 'peers', 'interface.asc'), keys.interface.privateKey);
    await expectCode(dir, 'CR_KEY_NOT_PUBLIC', /peers\/interface\.asc: is a private key/);
  });

  it('CR_KEY_WRONG_PASSPHRASE and CR_KEY_PASSPHRASE_MISSING', async () => {
    await expectCode(keys.app.dir, 'CR_KEY_WRONG_PASSPHRASE', /private\.asc: cannot decrypt the private key/, 'wrong passphrase');
    await expectCode(keys.app.dir, 'CR_KEY_PASSPHRASE_MISSING', /private\.asc: no passphrase/, '');
  });

  it('CR_KEY_UNPROTECTED: a private key without a passphrase', async () => {
    const dir = await appCopy();
    const key = await decryptKey({ privateKey: await readPrivateKey({ armoredKey: keys.app.privateKey }), passphrase: keys.app.passphrase });
    await writeFile(join(dir, 'private.asc'), key.armor());
    await expectCode(dir, 'CR_KEY_UNPROTECTED', /private\.asc: private key is not protected/);
  });

  it('CR_KEY_EXPIRED and CR_KEY_REVOKED: own current key', async () => {
    const dir = await appCopy();
    const expired = await generateServiceKey({ service: 'app', passphrase: keys.app.passphrase, date: new Date(Date.now() - 7_200_000), keyExpirationTime: 3600 });
    await writePrivateKeyFile(join(dir, 'private.asc'), expired.privateKey, { overwrite: true });
    await expectCode(dir, 'CR_KEY_EXPIRED', /private\.asc: the key has expired/);

    const key = await decryptKey({ privateKey: await readPrivateKey({ armoredKey: keys.app.privateKey }), passphrase: keys.app.passphrase });
    const { privateKey: revoked } = await revokeKey({ key, format: 'object' });
    const armored = (await encryptKey({ privateKey: revoked, passphrase: keys.app.passphrase })).armor();
    await writePrivateKeyFile(join(dir, 'private.asc'), armored, { overwrite: true });
    await expectCode(dir, 'CR_KEY_REVOKED', /private\.asc: the key is revoked/);
  });

  it('an expired older own key is still loaded (it only decrypts)', async () => {
    const dir = await appCopy();
    const expired = await generateServiceKey({ service: 'app', passphrase: keys.app.passphrase, date: new Date(Date.now() - 7_200_000), keyExpirationTime: 3600 });
    await writePrivateKeyFile(join(dir, 'private-20200101T000000Z.asc'), expired.privateKey);
    const loaded = await loadServiceKeys({ dir, passphrase: keys.app.passphrase });
    expect(loaded.own.older.map((k) => k.getFingerprint().toUpperCase())).toEqual([expired.fingerprint]);
  });

  it('CR_KEY_NO_PEERS: no peers folder, an empty one, or only unusable keys', async () => {
    const dir = await appCopy();
    await rm(join(dir, 'peers', 'interface.asc'));
    await expectCode(dir, 'CR_KEY_NO_PEERS', /peers: no \*\.asc peer key/);
    await rm(join(dir, 'peers'), { recursive: true });
    await expectCode(dir, 'CR_KEY_NO_PEERS', /peers: folder not found/);
    const expired = await generateServiceKey({ service: 'interface', passphrase: 'x', date: new Date(Date.now() - 7_200_000), keyExpirationTime: 3600 });
    await mkdir(join(dir, 'peers'));
    await writeFile(join(dir, 'peers', 'interface.asc'), expired.publicKey);
    await expectCode(dir, 'CR_KEY_EXPIRED', new RegExp(`peers: no pinned peer key can encrypt now \\(interface ${expired.fingerprint} expired\\)`));
  });
});

describe('loadServiceKeys refuses unsafe folders', () => {
  it('CR_KEY_INSECURE_PERMISSIONS: a private.asc (or older private-*.asc) its group or others can read', async () => {
    for (const mode of [0o640, 0o604, 0o660]) {
      const dir = await appCopy();
      await chmod(join(dir, 'private.asc'), mode);
      await expectCode(dir, 'CR_KEY_INSECURE_PERMISSIONS', new RegExp(`private\\.asc: mode 0${mode.toString(8)} lets its group or others read the private key; run chmod 600`));
    }
    const dir = await appCopy();
    const older = await generateServiceKey({ service: 'app', passphrase: keys.app.passphrase });
    await writeFile(join(dir, 'private-20200101T000000Z.asc'), older.privateKey, { mode: 0o644 });
    await expectCode(dir, 'CR_KEY_INSECURE_PERMISSIONS', /private-20200101T000000Z\.asc: mode 0644/);
    await chmod(join(dir, 'private-20200101T000000Z.asc'), 0o400);
    expect((await loadServiceKeys({ dir, passphrase: keys.app.passphrase })).own.older).toHaveLength(1);
  });

  it('CR_KEY_OWN_KEY_AS_PEER: a peers/ folder that pins the own current or an older own key', async () => {
    const dir = await appCopy();
    await writeFile(join(dir, 'peers', 'interface-next.asc'), keys.app.publicKey);
    await expectCode(dir, 'CR_KEY_OWN_KEY_AS_PEER', new RegExp(`peers/interface-next\\.asc: pins this service's own key ${keys.app.fingerprint}`));

    const rotated = await appCopy();
    const older = await generateServiceKey({ service: 'app', passphrase: keys.app.passphrase });
    await writePrivateKeyFile(join(rotated, 'private-20200101T000000Z.asc'), older.privateKey);
    await writeFile(join(rotated, 'peers', 'app.asc'), older.publicKey);
    await expectCode(rotated, 'CR_KEY_OWN_KEY_AS_PEER', new RegExp(`peers/app\\.asc: pins this service's own key ${older.fingerprint}`));
  });
});

describe('key files', () => {
  it('writes private files 0600 in 0700 folders and refuses to overwrite', async () => {
    const dir = await appCopy();
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'peers'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'private.asc'))).mode & 0o777).toBe(0o600);
    const err = await writePrivateKeyFile(join(dir, 'private.asc'), 'x').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CR_KEY_EXISTS' });
    expect(await readFile(join(dir, 'private.asc'), 'utf8')).toBe(keys.app.privateKey);
  });

  it('readPublicKeyFile reads a public key', async () => {
    const key = await readPublicKeyFile(join(keys.app.dir, 'public.asc'));
    expect(key.getFingerprint().toUpperCase()).toBe(keys.app.fingerprint);
  });
});

describe('generateServiceKey', () => {
  it('makes a passphrase-protected v4 Ed25519/Curve25519 (legacy encoding) key with the service user ID', async () => {
    const key = await readPrivateKey({ armoredKey: keys.app.privateKey });
    expect(key.keyPacket.version).toBe(4);
    expect(key.isDecrypted()).toBe(false);
    expect(key.getAlgorithmInfo()).toEqual({ algorithm: 'eddsaLegacy', curve: 'ed25519Legacy' });
    expect(key.subkeys.map((s) => s.getAlgorithmInfo())).toEqual([{ algorithm: 'ecdh', curve: 'curve25519Legacy' }]);
    expect(key.getUserIDs()).toEqual(['care-relay app <app@care-relay.invalid>']);
  });

  it('requires a passphrase and a service name', async () => {
    await expect(generateServiceKey({ service: 'app', passphrase: '' })).rejects.toMatchObject({ code: 'CR_KEY_PASSPHRASE_MISSING' });
    await expect(generateServiceKey({ service: 'App Service', passphrase: 'x' })).rejects.toThrow(TypeError);
  });
});
