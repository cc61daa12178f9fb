import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateServiceKey, type GeneratedServiceKey } from '../../services/core/keys/generate.ts';
import { writeServiceKeyFolder } from '../../services/core/keys/files.ts';
import type { OwnKeyring, PeerKeyring } from '../../services/core/keys/keyring.ts';
import { loadServiceKeys } from '../../services/core/keys/load.ts';

/** One side's test keys: its folder on disk and the loaded keyrings. */
export interface TestServiceKeys {
  /** Service name: `app` or `interface`. */
  service: 'app' | 'interface';
  /** Its key folder (`<root>/<service>`): private.asc, public.asc, peers/<other>.asc. */
  dir: string;
  /** The passphrase protecting private.asc (generated at run time). */
  passphrase: string;
  /** Own keyring, loaded with `loadServiceKeys`. */
  own: OwnKeyring;
  /** Pinned peers (the other side), loaded with `loadServiceKeys`. */
  peers: PeerKeyring;
  /** Primary-key fingerprint, upper-case hex. */
  fingerprint: string;
  /** Armored public key. */
  publicKey: string;
  /** Armored private key (passphrase-protected). */
  privateKey: string;
}

/** Both sides, in one temporary `keys/` root laid out like `care-relay keys init`. */
export interface TestServiceKeyPair {
  /** The temporary keys root holding `app/` and `interface/`. */
  root: string;
  /** The app service's keys. */
  app: TestServiceKeys;
  /** The interface service's keys. */
  interface: TestServiceKeys;
  /** Deletes the temporary folder. */
  cleanup(): Promise<void>;
}

/** Options for {@link makeServiceKeyPair}. */
export interface MakeServiceKeyPairOptions {
  /** Generate new keys instead of reusing the ones cached in this test file (worker). */
  fresh?: boolean;
}

interface Material {
  passphrase: string;
  app: GeneratedServiceKey;
  interface: GeneratedServiceKey;
}

let cached: Promise<Material> | undefined;

async function generateMaterial(): Promise<Material> {
  const passphrase = `test-${randomBytes(12).toString('hex')}`;
  const [app, iface] = await Promise.all([
    generateServiceKey({ service: 'app', passphrase }),
    generateServiceKey({ service: 'interface', passphrase }),
  ]);
  return { passphrase, app, interface: iface };
}

/**
 * Creates key folders for both services in a new temp dir (same layout and modes as
 * `care-relay keys init`) and loads them with `loadServiceKeys`. Key material is generated
 * once per test file and reused unless `fresh` is set; every call gets its own folder, so a
 * test may rotate or delete files freely. Call `cleanup()` in `afterAll`.
 *
 * @example
 *   const keys = await makeServiceKeyPair();
 *   const sealed = await seal(envelope, keys.interface.own, keys.interface.peers);
 *   await open(sealed.body, { own: keys.app.own, peers: keys.app.peers, self: 'app', queue: 'interface-to-app', maxSkewMs: 60_000, maxAgeMs: 3_600_000 });
 */
export async function makeServiceKeyPair(options: MakeServiceKeyPairOptions = {}): Promise<TestServiceKeyPair> {
  const material = options.fresh ? await generateMaterial() : await (cached ??= generateMaterial());
  const root = await mkdtemp(join(tmpdir(), 'cr-keys-'));
  const side = async (service: 'app' | 'interface', other: 'app' | 'interface'): Promise<TestServiceKeys> => {
    const dir = join(root, service);
    const mine = material[service];
    await writeServiceKeyFolder({ dir, privateKey: mine.privateKey, publicKey: mine.publicKey, peers: [{ name: other, publicKey: material[other].publicKey }] });
    const { own, peers } = await loadServiceKeys({ dir, passphrase: material.passphrase });
    return { service, dir, passphrase: material.passphrase, own, peers, fingerprint: mine.fingerprint, publicKey: mine.publicKey, privateKey: mine.privateKey };
  };
  const [app, iface] = await Promise.all([side('app', 'interface'), side('interface', 'app')]);
  return { root, app, interface: iface, cleanup: () => rm(root, { recursive: true, force: true }) };
}
