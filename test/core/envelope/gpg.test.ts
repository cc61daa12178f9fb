// GnuPG 2.2+ interoperability, both ways, with a throw-away GNUPGHOME. Kept to a handful
// of gpg runs: each spawns gpg (and its agent), which is slow on small CI machines.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEnvelope } from '../../../services/core/envelope/envelope.ts';
import { openMessage } from '../../../services/core/envelope/open.ts';
import { seal } from '../../../services/core/envelope/seal.ts';
import { loadServiceKeys } from '../../../services/core/keys/load.ts';
import { uuidv7 } from '../../../services/core/envelope/uuidv7.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';
import { appContext, sampleEnvelope } from './craft.ts';

const hasGpg = spawnSync('gpg', ['--version']).status === 0;

let keys: TestServiceKeyPair;
let work: string;

/** Runs gpg in its own home with the passphrase from a file; returns stdout (status lines with --status-fd 1). */
function gpg(home: string, args: string[], passphraseFile?: string): { status: number | null; stdout: string; stderr: string } {
  const base = ['--homedir', home, '--batch', '--no-tty', '--quiet', '--trust-model', 'always'];
  const secret = passphraseFile ? ['--pinentry-mode', 'loopback', '--passphrase-file', passphraseFile] : [];
  const r = spawnSync('gpg', [...base, ...secret, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function gpgHome(name: string): Promise<string> {
  const home = join(work, name);
  await mkdir(home, { mode: 0o700 });
  return home;
}

function stopAgent(home: string): void {
  spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
}

describe.skipIf(!hasGpg)('GnuPG interoperability', () => {
  const homes: string[] = [];

  beforeAll(async () => {
    keys = await makeServiceKeyPair();
    // Short path: gpg-agent's socket path must stay under the Unix socket limit.
    work = await mkdtemp(join(tmpdir(), 'crg-'));
    await writeFile(join(work, 'pass'), keys.app.passphrase, { mode: 0o600 });
  });
  afterAll(async () => {
    for (const home of homes) stopAgent(home);
    await rm(work, { recursive: true, force: true });
    await keys.cleanup();
  });

  it('gpg decrypts and verifies a project-sealed message with the recipient private key', async () => {
    const home = await gpgHome('recv');
    homes.push(home);
    // The app's private key (as exported from its folder) and the interface's public key.
    expect(gpg(home, ['--import', join(keys.app.dir, 'private.asc')], join(work, 'pass')).status).toBe(0);
    expect(gpg(home, ['--import', join(keys.app.dir, 'peers', 'interface.asc')]).status).toBe(0);
    const envelope = sampleEnvelope();
    const sealed = await seal(envelope, keys.interface.own, keys.interface.peers);
    await writeFile(join(work, 'in.asc'), sealed.body);
    const r = gpg(home, ['--status-fd', '1', '--output', join(work, 'out.json'), '--decrypt', join(work, 'in.asc')], join(work, 'pass'));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\[GNUPG:\] DECRYPTION_OKAY/);
    expect(r.stdout).toMatch(/\[GNUPG:\] GOODSIG /);
    // VALIDSIG's last field is the signer's primary-key fingerprint: the cr-signer attribute.
    const validsig = r.stdout.split('\n').find((l) => l.startsWith('[GNUPG:] VALIDSIG '))!;
    expect(validsig.trim().split(' ').at(-1)).toBe(sealed.attributes['cr-signer'].StringValue);
    const plaintext = await readFile(join(work, 'out.json'), 'utf8');
    expect(plaintext).toBe(encodeEnvelope(envelope));
    expect(createHash('sha256').update(JSON.parse(plaintext).body, 'utf8').digest('hex')).toBe(envelope.sha256);
  });

  it('a `gpg --sign --encrypt --armor` of a hand-written envelope opens in the project', async () => {
    const home = await gpgHome('send');
    homes.push(home);
    expect(gpg(home, ['--import', join(keys.interface.dir, 'private.asc')], join(work, 'pass')).status).toBe(0);
    expect(gpg(home, ['--import', join(keys.interface.dir, 'peers', 'app.asc')]).status).toBe(0);
    // Written the way docs/wire-format.md tells a person to, field by field.
    const body = '{"resourceType":"Bundle","type":"message"}';
    const json = JSON.stringify({
      v: 1,
      id: uuidv7(),
      kind: 'care.submission',
      from: 'interface',
      to: 'app',
      queue: 'interface-to-app',
      sentAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      partner: 'acme-health',
      contentType: 'application/fhir+json',
      body,
      bodyEncoding: 'utf8',
      sha256: createHash('sha256').update(body, 'utf8').digest('hex'),
    });
    await writeFile(join(work, 'envelope.json'), json);
    const r = gpg(
      home,
      ['--local-user', keys.interface.fingerprint, '--recipient', keys.app.fingerprint, '--sign', '--encrypt', '--armor', '--output', join(work, 'msg.asc'), join(work, 'envelope.json')],
      join(work, 'pass'),
    );
    expect(r.status, r.stderr).toBe(0);
    const opened = await openMessage(await readFile(join(work, 'msg.asc'), 'utf8'), appContext(keys.app));
    expect(opened.envelope.body).toBe(body);
    expect(opened.signer.fingerprint).toBe(keys.interface.fingerprint);
  });

  it('a key pair made by gpg (ed25519 + cv25519) loads as a service key and round-trips', async () => {
    const home = await gpgHome('gen');
    homes.push(home);
    const uid = 'care-relay interface <interface@care-relay.invalid>';
    expect(gpg(home, ['--quick-generate-key', uid, 'ed25519', 'sign', 'never'], join(work, 'pass')).status).toBe(0);
    const fpr = gpg(home, ['--with-colons', '--list-keys', uid]).stdout.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
    expect(gpg(home, ['--quick-add-key', fpr, 'cv25519', 'encr', 'never'], join(work, 'pass')).status).toBe(0);
    const dir = join(work, 'gpg-interface');
    await mkdir(join(dir, 'peers'), { recursive: true });
    await writeFile(join(dir, 'private.asc'), gpg(home, ['--armor', '--export-secret-keys', fpr], join(work, 'pass')).stdout, { mode: 0o600 });
    await writeFile(join(dir, 'peers', 'app.asc'), keys.app.publicKey);
    const iface = await loadServiceKeys({ dir, passphrase: keys.app.passphrase });
    expect(iface.own.fingerprint).toBe(fpr);
    const gpgPinned = await makeAppPinning(gpg(home, ['--armor', '--export', fpr]).stdout);
    const envelope = sampleEnvelope();
    const sealed = await seal(envelope, iface.own, iface.peers);
    expect((await openMessage(sealed.body, appContext(keys.app, { peers: gpgPinned }))).envelope).toEqual(envelope);
  });
});

async function makeAppPinning(armoredPublic: string) {
  const { readKey } = await import('openpgp');
  const { peerKeyring } = await import('../../../services/core/keys/keyring.ts');
  return peerKeyring([{ name: 'interface', key: await readKey({ armoredKey: armoredPublic }) }]);
}
