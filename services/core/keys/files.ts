import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { KeyError } from './errors.ts';

/** Options for the key-file writers. */
export interface WriteKeyFileOptions {
  /** Replace an existing file; without it an existing file is `CR_KEY_EXISTS`. */
  overwrite?: boolean;
}

/** Creates a key folder (and parents) and restricts it to its owner (0700). */
export async function ensureKeyDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/** True when something exists at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function writeAtomically(path: string, text: string, mode: number, options: WriteKeyFileOptions): Promise<void> {
  await ensureKeyDir(dirname(path));
  if (!options.overwrite && (await exists(path))) {
    throw new KeyError('CR_KEY_EXISTS', `${path}: already exists (refusing to overwrite)`);
  }
  // Written beside the target with the final mode from the start, then renamed: never a
  // moment where the file is partial or readable by others.
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.chmod(mode);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(tmp, path);
}

/** Writes an armored private key (or any secret, e.g. a passphrase file) with mode 0600 in a 0700 folder. */
export async function writePrivateKeyFile(path: string, armored: string, options: WriteKeyFileOptions = {}): Promise<void> {
  await writeAtomically(path, armored, 0o600, options);
}

/** Writes an armored public key with mode 0644 (its folder is still 0700). */
export async function writePublicKeyFile(path: string, armored: string, options: WriteKeyFileOptions = {}): Promise<void> {
  await writeAtomically(path, armored, 0o644, options);
}

/** What {@link writeServiceKeyFolder} writes. */
export interface ServiceKeyFolder {
  /** The service's own folder, e.g. `keys/app`. */
  dir: string;
  /** Armored, passphrase-protected private key: `private.asc` (0600). */
  privateKey: string;
  /** Armored public key: `public.asc`. */
  publicKey: string;
  /** Peer public keys to pin: `peers/<name>.asc`. */
  peers: ReadonlyArray<{ name: string; publicKey: string }>;
  /** Replace existing files. */
  overwrite?: boolean;
}

/** Writes a service key folder in the layout `loadServiceKeys` reads (folders 0700, private files 0600). */
export async function writeServiceKeyFolder(folder: ServiceKeyFolder): Promise<void> {
  const options = { overwrite: folder.overwrite ?? false };
  await ensureKeyDir(folder.dir);
  await ensureKeyDir(join(folder.dir, 'peers'));
  await writePrivateKeyFile(join(folder.dir, 'private.asc'), folder.privateKey, options);
  await writePublicKeyFile(join(folder.dir, 'public.asc'), folder.publicKey, options);
  for (const peer of folder.peers) await writePublicKeyFile(join(folder.dir, 'peers', `${peer.name}.asc`), peer.publicKey, options);
}
