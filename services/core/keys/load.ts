import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { decryptKey, readKeys, type Key, type PrivateKey, type PublicKey } from 'openpgp';
import { KeyError } from './errors.ts';
import { fingerprintOf, keyStatus, ownKeyring, peerEncryptionKey, peerKeyring, type OwnKeyring, type PeerKeyring } from './keyring.ts';

/** Options for {@link loadServiceKeys}. */
export interface LoadServiceKeysOptions {
  /** The service's own key folder: private.asc, private-*.asc, public.asc, peers/*.asc. */
  dir: string;
  /** Passphrase of the private keys; several during a passphrase change (each key takes the one that fits). */
  passphrase: string | readonly string[];
  /** The time validity is checked at (tests); now by default. */
  now?: Date;
}

/** What a service holds: its own keys and the peer keys it pins. */
export interface ServiceKeys {
  /** Own private keys, decrypted in memory. */
  own: OwnKeyring;
  /** Pinned peer public keys. */
  peers: PeerKeyring;
}

/** Largest key file read (a key is a few KB; this keeps a wrong path from being read whole). */
const MAX_KEY_FILE_BYTES = 1024 * 1024;

function errnoCode(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? 'error';
}

async function readKeyText(path: string): Promise<string> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new KeyError('CR_KEY_FILE_MISSING', `${path}: file not found`, err);
    throw new KeyError('CR_KEY_UNREADABLE', `${path}: cannot read the file (${errnoCode(err)})`, err);
  }
  if (data.length > MAX_KEY_FILE_BYTES) throw new KeyError('CR_KEY_NOT_A_KEY', `${path}: ${data.length} bytes is too large for a key file`);
  return data.toString('utf8');
}

/** Reads a file holding exactly one armored OpenPGP key (public or private). Throws KeyError. */
export async function readKeyFile(path: string): Promise<Key> {
  const text = await readKeyText(path);
  // openpgp reads only the first armored block: a second one would be silently ignored.
  const blocks = text.match(/^-----BEGIN PGP /gm)?.length ?? 0;
  if (blocks > 1) throw new KeyError('CR_KEY_NOT_A_KEY', `${path}: holds ${blocks} armored blocks; expected exactly one key`);
  let keys: Key[];
  try {
    keys = await readKeys({ armoredKeys: text });
  } catch (err) {
    throw new KeyError('CR_KEY_NOT_A_KEY', `${path}: not an ASCII-armored OpenPGP key`, err);
  }
  if (keys.length !== 1) throw new KeyError('CR_KEY_NOT_A_KEY', `${path}: holds ${keys.length} keys; expected exactly one`);
  return keys[0]!;
}

/** Reads a public key file (a private key there is refused: it must never travel). Throws KeyError. */
export async function readPublicKeyFile(path: string): Promise<PublicKey> {
  const key = await readKeyFile(path);
  if (key.isPrivate()) {
    throw new KeyError('CR_KEY_NOT_PUBLIC', `${path}: is a private key where a public key is expected (share only public.asc)`);
  }
  return key;
}

/**
 * Refuses a private key file that its group or others may read or write (mode & 077): the
 * passphrase is then the only protection left. Throws KeyError `CR_KEY_INSECURE_PERMISSIONS`.
 */
export async function checkPrivateKeyFileMode(path: string): Promise<void> {
  let mode: number;
  try {
    mode = (await stat(path)).mode & 0o777;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new KeyError('CR_KEY_FILE_MISSING', `${path}: file not found`, err);
    throw new KeyError('CR_KEY_UNREADABLE', `${path}: cannot read the file (${errnoCode(err)})`, err);
  }
  if ((mode & 0o077) !== 0) {
    const octal = mode.toString(8).padStart(4, '0');
    throw new KeyError('CR_KEY_INSECURE_PERMISSIONS', `${path}: mode ${octal} lets its group or others read the private key; run chmod 600 on it`);
  }
}

/** Reads a private key file (not decrypted), refusing one its group or others can read. Throws KeyError. */
export async function readPrivateKeyFileLocked(path: string): Promise<Key> {
  const key = await readKeyFile(path);
  if (!key.isPrivate()) throw new KeyError('CR_KEY_NOT_PRIVATE', `${path}: is a public key where a private key is expected`);
  await checkPrivateKeyFileMode(path);
  return key;
}

/** Reads and decrypts a passphrase-protected private key file (mode 0600 or stricter). Throws KeyError. */
export async function readPrivateKeyFile(path: string, passphrase: string | readonly string[]): Promise<PrivateKey> {
  const key = (await readPrivateKeyFileLocked(path)) as PrivateKey;
  if (key.isDecrypted()) {
    throw new KeyError('CR_KEY_UNPROTECTED', `${path}: private key is not protected by a passphrase; re-export it with one`);
  }
  const passphrases = (typeof passphrase === 'string' ? [passphrase] : [...passphrase]).filter((p) => typeof p === 'string' && p !== '');
  if (passphrases.length === 0) throw new KeyError('CR_KEY_PASSPHRASE_MISSING', `${path}: no passphrase given to decrypt it`);
  try {
    return await decryptKey({ privateKey: key, passphrase: passphrases });
  } catch (err) {
    throw new KeyError('CR_KEY_WRONG_PASSPHRASE', `${path}: cannot decrypt the private key (wrong passphrase?)`, err);
  }
}

async function checkCurrentOwnKey(path: string, key: PrivateKey, now: Date): Promise<void> {
  const status = await keyStatus(key, now);
  if (status === 'revoked') throw new KeyError('CR_KEY_REVOKED', `${path}: the key is revoked; rotate to a new key`);
  if (status === 'expired') throw new KeyError('CR_KEY_EXPIRED', `${path}: the key has expired; rotate to a new key`);
  try {
    if (status !== 'valid') throw new Error(status);
    await key.getSigningKey(undefined, now);
    await key.getDecryptionKeys(undefined, now);
  } catch (err) {
    throw new KeyError('CR_KEY_NOT_A_KEY', `${path}: the key cannot both sign and decrypt now`, err);
  }
}

async function listAsc(dir: string, filter: (name: string) => boolean): Promise<string[]> {
  const names = await readdir(dir);
  return names.filter((n) => n.endsWith('.asc') && filter(n)).sort();
}

/**
 * Loads a service key folder: private.asc (current: signs, decrypts), private-*.asc (older:
 * decrypt only), every peers/*.asc pinned by primary fingerprint (never one of the own keys;
 * private files must be mode 0600 or stricter). Throws KeyError with one
 * line naming the file and the cause; never the passphrase or key material.
 */
export async function loadServiceKeys(options: LoadServiceKeysOptions): Promise<ServiceKeys> {
  const { dir, passphrase } = options;
  const now = options.now ?? new Date();
  const currentPath = join(dir, 'private.asc');
  const current = await readPrivateKeyFile(currentPath, passphrase);
  await checkCurrentOwnKey(currentPath, current, now);

  let olderNames: string[];
  try {
    olderNames = await listAsc(dir, (n) => n.startsWith('private-'));
  } catch (err) {
    throw new KeyError('CR_KEY_UNREADABLE', `${dir}: cannot list the key folder (${errnoCode(err)})`, err);
  }
  const older: PrivateKey[] = [];
  for (const name of olderNames) older.push(await readPrivateKeyFile(join(dir, name), passphrase));

  const peersDir = join(dir, 'peers');
  let peerNames: string[];
  try {
    peerNames = await listAsc(peersDir, () => true);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new KeyError('CR_KEY_NO_PEERS', `${peersDir}: folder not found; add the peer public key there`, err);
    throw new KeyError('CR_KEY_UNREADABLE', `${peersDir}: cannot list the folder (${errnoCode(err)})`, err);
  }
  if (peerNames.length === 0) throw new KeyError('CR_KEY_NO_PEERS', `${peersDir}: no *.asc peer key; add the peer public key there`);
  const pinned: Array<{ name: string; key: PublicKey }> = [];
  for (const file of peerNames) pinned.push({ name: basename(file, '.asc'), key: await readPublicKeyFile(join(peersDir, file)) });
  const own = new Set([current, ...older].map((k) => fingerprintOf(k)));
  for (const [i, { key }] of pinned.entries()) {
    if (own.has(fingerprintOf(key))) {
      throw new KeyError('CR_KEY_OWN_KEY_AS_PEER', `${join(peersDir, peerNames[i]!)}: pins this service's own key ${fingerprintOf(key)}; pin the peer's public key instead`);
    }
  }
  const peers = peerKeyring(pinned);
  try {
    await peerEncryptionKey(peers, now);
  } catch (err) {
    if (err instanceof KeyError) throw new KeyError(err.code, `${peersDir}: ${err.message}`, err);
    throw err;
  }
  return { own: ownKeyring(current, older), peers };
}

/**
 * Primary fingerprints of every own key in a service key folder, read without decrypting:
 * private.asc, private-*.asc (older and staged), public.asc, public-next.asc. Maps each to its file.
 */
export async function ownKeyFingerprints(dir: string): Promise<Map<string, string>> {
  let names: string[];
  try {
    names = await listAsc(dir, (n) => n === 'private.asc' || n.startsWith('private-') || n === 'public.asc' || n === 'public-next.asc');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return new Map();
    throw new KeyError('CR_KEY_UNREADABLE', `${dir}: cannot list the key folder (${errnoCode(err)})`, err);
  }
  const out = new Map<string, string>();
  for (const name of names) {
    const path = join(dir, name);
    const key = name.startsWith('private') ? await readPrivateKeyFileLocked(path) : await readKeyFile(path);
    // Sorted, private files come first: a key is reported by its private file.
    if (!out.has(fingerprintOf(key))) out.set(fingerprintOf(key), path);
  }
  return out;
}
