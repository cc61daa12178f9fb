import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope } from '../../services/core/envelope/envelope.ts';
import { open } from '../../services/core/envelope/open.ts';
import { seal } from '../../services/core/envelope/seal.ts';
import { loadServiceKeys } from '../../services/core/keys/load.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'services', 'cli', 'main.ts');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI in a child process (the same Node as the tests). */
function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Result> {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined && k !== 'CARE_RELAY_KEY_PASSPHRASE') childEnv[k] = v;
  if (env.CARE_RELAY_KEY_PASSPHRASE !== undefined) childEnv.CARE_RELAY_KEY_PASSPHRASE = env.CARE_RELAY_KEY_PASSPHRASE;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'keys', ...args], { env: childEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'cr-cli-keys-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

// Each test spawns the real CLI several times; on a loaded machine one spawn can take seconds.
describe('care-relay keys', { timeout: 180_000 }, () => {
  it('init creates both folders with the right files and modes, and the keys load', async () => {
    const root = join(tmp, 'keys');
    const r = await cli(['init', '--dir', root]);
    expect(r.code, r.stderr).toBe(0);
    const fingerprints = [...r.stdout.matchAll(/\b([0-9A-F]{40})\b/g)].map((m) => m[1]);
    expect(fingerprints).toHaveLength(2);
    expect(r.stdout).toMatch(/passphrase/);
    for (const [service, other] of [['app', 'interface'], ['interface', 'app']] as const) {
      const dir = join(root, service);
      expect((await readdir(dir)).sort()).toEqual(['passphrase', 'peers', 'private.asc', 'public.asc']);
      expect(await readdir(join(dir, 'peers'))).toEqual([`${other}.asc`]);
      expect(await mode(dir)).toBe(0o700);
      expect(await mode(join(dir, 'private.asc'))).toBe(0o600);
      expect(await mode(join(dir, 'passphrase'))).toBe(0o600);
      const passphrase = (await readFile(join(dir, 'passphrase'), 'utf8')).trim();
      expect(r.stdout).not.toContain(passphrase);
      const loaded = await loadServiceKeys({ dir, passphrase });
      expect(fingerprints).toContain(loaded.own.fingerprint);
      expect(fingerprints).toContain(loaded.peers.pinned[0]!.fingerprint);
    }
    const again = await cli(['init', '--dir', root]);
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/private\.asc: already exists; use --force/);
    const forced = await cli(['init', '--dir', root], { CARE_RELAY_KEY_PASSPHRASE: 'from-env-passphrase' });
    expect(forced.code).toBe(1);
    const replaced = await cli(['init', '--dir', root, '--force'], { CARE_RELAY_KEY_PASSPHRASE: 'from-env-passphrase' });
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(replaced.stdout).toMatch(/passphrase: from CARE_RELAY_KEY_PASSPHRASE/);
    expect(replaced.stdout).not.toContain('from-env-passphrase');
    await expect(loadServiceKeys({ dir: join(root, 'app'), passphrase: 'from-env-passphrase' })).resolves.toBeDefined();
  });

  it('generate, fingerprint, add-peer and rotate work together', async () => {
    const root = join(tmp, 'separate');
    const passFile = join(tmp, 'pass');
    await writeFile(passFile, 'file-passphrase\n', { mode: 0o600 });
    const app = join(root, 'app');
    const iface = join(root, 'interface');
    const noPass = await cli(['generate', '--service', 'app', '--dir', app]);
    expect(noPass.code).toBe(1);
    expect(noPass.stderr).toMatch(/no passphrase: set CARE_RELAY_KEY_PASSPHRASE or pass --passphrase-file/);
    const genApp = await cli(['generate', '--service', 'app', '--dir', app, '--passphrase-file', passFile]);
    expect(genApp.code, genApp.stderr).toBe(0);
    const genIface = await cli(['generate', '--service', 'interface', '--dir', iface], { CARE_RELAY_KEY_PASSPHRASE: 'env-pass' });
    expect(genIface.code, genIface.stderr).toBe(0);
    expect(await mode(join(app, 'private.asc'))).toBe(0o600);

    const fp = await cli(['fingerprint', join(app, 'public.asc')]);
    expect(fp.code).toBe(0);
    const appFp = /^([0-9A-F]{40})  public  valid/.exec(fp.stdout)?.[1];
    expect(appFp).toBeDefined();
    expect(genApp.stdout).toContain(appFp);

    const pinApp = await cli(['add-peer', '--dir', iface, join(app, 'public.asc')]);
    expect(pinApp.code, pinApp.stderr).toBe(0);
    expect(pinApp.stdout).toContain(`pinned ${appFp}`);
    expect(await readdir(join(iface, 'peers'))).toEqual(['app.asc']);
    expect((await cli(['add-peer', '--dir', iface, join(app, 'public.asc')])).stdout).toMatch(/already pinned/);
    const privateAsPeer = await cli(['add-peer', '--dir', iface, join(app, 'private.asc')]);
    expect(privateAsPeer.code).toBe(1);
    expect(privateAsPeer.stderr).toMatch(/is a private key where a public key is expected/);
    expect((await cli(['add-peer', '--dir', app, join(iface, 'public.asc')])).code).toBe(0);

    const rotated = await cli(['rotate', '--service', 'app', '--dir', app, '--now', '--passphrase-file', passFile]);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toContain(`old key ${appFp}`);
    const files = await readdir(app);
    expect(files.filter((f) => /^private-\d{8}T\d{6}Z\.asc$/.test(f))).toHaveLength(1);
    const loaded = await loadServiceKeys({ dir: app, passphrase: 'file-passphrase' });
    expect(loaded.own.fingerprint).not.toBe(appFp);
    expect(loaded.own.older.map((k) => k.getFingerprint().toUpperCase())).toEqual([appFp]);
    // The peer pins the new key beside the old one.
    const pinNew = await cli(['add-peer', '--dir', iface, '--name', 'app', join(app, 'public.asc')]);
    expect(pinNew.code, pinNew.stderr).toBe(0);
    expect((await readdir(join(iface, 'peers'))).length).toBe(2);
    const ifaceKeys = await loadServiceKeys({ dir: iface, passphrase: 'env-pass' });
    expect(ifaceKeys.peers.pinned[0]!.fingerprint).toBe(loaded.own.fingerprint);
  });

  it('rotates in two steps without losing a message: stage (decrypts, does not sign), peer pins, promote (signs)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'cr-cli-stage-'));
    const init = await cli(['init', '--dir', root], { CARE_RELAY_KEY_PASSPHRASE: 'stage-pass' });
    expect(init.code, init.stderr).toBe(0);
    const app = join(root, 'app');
    const iface = join(root, 'interface');
    const before = await loadServiceKeys({ dir: app, passphrase: 'stage-pass' });

    expect((await cli(['rotate', '--service', 'app', '--dir', app], { CARE_RELAY_KEY_PASSPHRASE: 'stage-pass' })).code).toBe(2);
    const staged = await cli(['rotate', '--service', 'app', '--dir', app, '--stage'], { CARE_RELAY_KEY_PASSPHRASE: 'stage-pass' });
    expect(staged.code, staged.stderr).toBe(0);
    const stagedKeys = await loadServiceKeys({ dir: app, passphrase: 'stage-pass' });
    // Still signs with the current key; the staged one only decrypts.
    expect(stagedKeys.own.fingerprint).toBe(before.own.fingerprint);
    expect(stagedKeys.own.older).toHaveLength(1);
    const newFp = stagedKeys.own.older[0]!.getFingerprint().toUpperCase();
    expect((await cli(['rotate', '--service', 'app', '--dir', app, '--stage'], { CARE_RELAY_KEY_PASSPHRASE: 'stage-pass' })).code).toBe(1);

    // The peer pins the staged key and encrypts to it; the app can already read that.
    expect((await cli(['add-peer', '--dir', iface, '--name', 'app', join(app, 'public-next.asc')])).code).toBe(0);
    const ifaceKeys = await loadServiceKeys({ dir: iface, passphrase: 'stage-pass' });
    expect(ifaceKeys.peers.pinned[0]!.fingerprint).toBe(newFp);
    const envelope = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', contentType: 'application/fhir+json', body: '{"resourceType":"Patient"}' });
    const sealedToNew = await seal(envelope, ifaceKeys.own, ifaceKeys.peers);
    const limits = { self: 'app', queue: 'interface-to-app', maxSkewMs: 60_000, maxAgeMs: 3_600_000 };
    expect((await open(sealedToNew.body, { own: stagedKeys.own, peers: stagedKeys.peers, ...limits })).id).toBe(envelope.id);

    const promoted = await cli(['rotate', '--service', 'app', '--dir', app, '--promote']);
    expect(promoted.code, promoted.stderr).toBe(0);
    const after = await loadServiceKeys({ dir: app, passphrase: 'stage-pass' });
    expect(after.own.fingerprint).toBe(newFp);
    expect(after.own.older.map((k) => k.getFingerprint().toUpperCase())).toEqual([before.own.fingerprint]);
    expect((await readFile(join(app, 'public.asc'), 'utf8')).includes('PUBLIC KEY')).toBe(true);
    expect((await readdir(app)).filter((f) => f.includes('next'))).toEqual([]);
    // The peer still pins the old key too, for what was signed before the promotion.
    expect(ifaceKeys.peers.pinned.map((p) => p.fingerprint)).toContain(before.own.fingerprint);
    await rm(root, { recursive: true, force: true });
  });

  it('add-peer refuses the own key (current, older, staged) and pins only the expected fingerprint', async () => {
    const root = await mkdtemp(join(tmpdir(), 'cr-cli-own-'));
    const env = { CARE_RELAY_KEY_PASSPHRASE: 'own-pass' };
    expect((await cli(['init', '--dir', root], env)).code).toBe(0);
    const app = join(root, 'app');
    const iface = join(root, 'interface');
    const peersBefore = await readdir(join(app, 'peers'));
    const appFp = /^([0-9A-F]{40})/.exec((await cli(['fingerprint', join(app, 'public.asc')])).stdout)![1]!;
    const ifaceFp = /^([0-9A-F]{40})/.exec((await cli(['fingerprint', join(iface, 'public.asc')])).stdout)![1]!;

    const self = await cli(['add-peer', '--dir', app, '--name', 'interface', join(app, 'public.asc')]);
    expect(self.code).toBe(1);
    expect(self.stderr).toMatch(new RegExp(`key ${appFp} is this service's own key .*private\\.asc\\); not pinned`));
    // The older key after a rotation is still an own key.
    expect((await cli(['rotate', '--service', 'app', '--dir', app, '--now'], env)).code).toBe(0);
    const oldSelf = await cli(['add-peer', '--dir', app, '--name', 'interface', join(iface, 'peers', 'app.asc')]);
    expect(oldSelf.code).toBe(1);
    expect(oldSelf.stderr).toMatch(new RegExp(`key ${appFp} is this service's own key .*private-\\d{8}T\\d{6}Z\\.asc\\)`));
    expect((await cli(['rotate', '--service', 'app', '--dir', app, '--stage'], env)).code).toBe(0);
    const stagedSelf = await cli(['add-peer', '--dir', app, '--name', 'interface', join(app, 'public-next.asc')]);
    expect(stagedSelf.code).toBe(1);
    expect(stagedSelf.stderr).toMatch(/is this service's own key/);
    expect(await readdir(join(app, 'peers'))).toEqual(peersBefore);

    // --expect-fingerprint: a mismatch writes nothing; the compared one (as gpg prints it) is pinned.
    const other = join(root, 'other');
    expect((await cli(['generate', '--service', 'interface', '--dir', other], env)).code).toBe(0);
    const wrong = await cli(['add-peer', '--dir', app, '--name', 'interface', '--expect-fingerprint', ifaceFp, join(other, 'public.asc')]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(new RegExp(`is not the expected ${ifaceFp}; not pinned`));
    expect(await readdir(join(app, 'peers'))).toEqual(peersBefore);
    expect((await cli(['add-peer', '--dir', app, '--expect-fingerprint', 'not-hex', join(iface, 'public.asc')])).code).toBe(2);
    const spaced = ifaceFp.toLowerCase().replace(/(.{4})/g, '$1 ').trim();
    await rm(join(app, 'peers', 'interface.asc'));
    const right = await cli(['add-peer', '--dir', app, '--name', 'interface', '--expect-fingerprint', spaced, join(iface, 'public.asc')]);
    expect(right.code, right.stderr).toBe(0);
    expect(right.stdout).toContain(`pinned ${ifaceFp}`);
    await rm(root, { recursive: true, force: true });
  });

  it('keys commands refuse a private key file its group or others can read', async () => {
    const root = await mkdtemp(join(tmpdir(), 'cr-cli-mode-'));
    const env = { CARE_RELAY_KEY_PASSPHRASE: 'mode-pass' };
    expect((await cli(['init', '--dir', root], env)).code).toBe(0);
    const app = join(root, 'app');
    await chmod(join(app, 'private.asc'), 0o644);
    for (const args of [['fingerprint', join(app, 'private.asc')], ['rotate', '--service', 'app', '--dir', app, '--stage'], ['add-peer', '--dir', app, join(root, 'interface', 'public.asc')]]) {
      const r = await cli(args, env);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/private\.asc: mode 0644 lets its group or others read the private key; run chmod 600 on it/);
    }
    expect((await readdir(app)).sort()).toEqual(['peers', 'private.asc', 'public.asc']);
    await rm(root, { recursive: true, force: true });
  });

  it('prints help (exit 0) and reports usage errors (exit 2)', async () => {
    for (const sub of ['init', 'generate', 'add-peer', 'fingerprint', 'rotate']) {
      const r = await cli([sub, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: care-relay keys ${sub}`));
    }
    expect((await cli(['--help'])).code).toBe(0);
    expect((await cli([])).code).toBe(2);
    expect((await cli(['nope'])).code).toBe(2);
    expect((await cli(['init', '--bogus'])).code).toBe(2);
    expect((await cli(['generate', '--dir', tmp])).stderr).toMatch(/--service is required/);
    expect((await cli(['fingerprint'])).code).toBe(2);
    const missing = await cli(['fingerprint', join(tmp, 'nope.asc')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^care-relay keys fingerprint: .*nope\.asc: file not found$/);
  });
});
