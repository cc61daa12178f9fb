// (1) The old way: one GnuPG process per message, sign+encrypt and decrypt+verify, with
// throw-away GNUPGHOMEs holding the same keys as the services (imported). Two variants:
// as deployed (passphrase-protected keys, unlocked by the agent for every message) and
// (1b) GnuPG at its best (unprotected keys, warm home and agent), the baseline of the ratios.
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeEnvelope } from '../services/core/envelope/envelope.ts';
import { submissionEnvelope, timed, type BenchKeys, type Throughput } from './lib.ts';

/** GnuPG throughput for one payload size. */
export interface GpgResult {
  /** Payload bytes. */
  size: number;
  /** `gpg --sign --encrypt --armor`, one process per message. */
  seal: Throughput;
  /** `gpg --decrypt` (verifying the signature), one process per message. */
  open: Throughput;
}

/** True when a `gpg` binary answers. */
export function hasGpg(): boolean {
  return spawnSync('gpg', ['--version']).status === 0;
}

/** The `gpg --version` first line (e.g. `gpg (GnuPG) 2.2.40`). */
export function gpgVersion(): string {
  return spawnSync('gpg', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'unknown';
}

function gpg(home: string, pass: string | undefined, args: string[], input: Buffer | string): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  const base = ['--homedir', home, '--batch', '--no-tty', '--quiet', '--trust-model', 'always'];
  const secret = pass ? ['--pinentry-mode', 'loopback', '--passphrase-file', pass] : [];
  return new Promise((resolve, reject) => {
    const child = spawn('gpg', [...base, ...secret, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.end(input);
  });
}

/** Which GnuPG set-up: `protected` (keys under the services' passphrase, as deployed) or `best` (unprotected keys). */
export type GpgMode = 'protected' | 'best';

/**
 * Runs the GnuPG baseline for each size, as many processes at a time as cores. `best` imports
 * the private keys without a passphrase (openpgp.js writes the decrypted keys), so no S2K runs per message.
 */
export async function benchGpg(keys: BenchKeys, sizes: readonly number[], budget: { durationMs: number; maxOps: number }, mode: GpgMode = 'protected'): Promise<GpgResult[]> {
  // Short path: gpg-agent's socket must fit the Unix socket path limit.
  const work = await mkdtemp(join(tmpdir(), 'crg-'));
  const passFile = join(work, 'pass');
  await writeFile(passFile, keys.passphrase, { mode: 0o600 });
  const pass = mode === 'best' ? undefined : passFile;
  const homeI = join(work, 'i');
  const homeA = join(work, 'a');
  try {
    for (const [home, own] of [
      [homeI, keys.interface],
      [homeA, keys.app],
    ] as const) {
      await mkdir(home, { mode: 0o700 });
      const peer = own === keys.app ? 'interface' : 'app';
      // `best`: the decrypted key as openpgp.js holds it, armored without protection (a temp file, removed below).
      const privateFile = join(work, `${peer}-of.asc`);
      if (mode === 'best') await writeFile(privateFile, own.keys.own.current.armor(), { mode: 0o600 });
      for (const [file, secret] of [
        [mode === 'best' ? privateFile : join(own.dir, 'private.asc'), pass],
        [join(own.dir, 'peers', `${peer}.asc`), undefined],
      ] as const) {
        const r = await gpg(home, secret, ['--import', file], '');
        if (r.code !== 0) throw new Error(`gpg --import failed: ${r.stderr.split('\n')[0]}`);
      }
    }
    const sealArgs = ['--compress-algo', 'none', '--local-user', keys.interface.fingerprint, '--recipient', keys.app.fingerprint, '--armor', '--sign', '--encrypt'];
    const openArgs = ['--status-fd', '2', '--decrypt'];
    const concurrency = availableParallelism();
    const results: GpgResult[] = [];
    for (const size of sizes) {
      const plaintext = encodeEnvelope(submissionEnvelope(size));
      const first = await gpg(homeI, pass, sealArgs, plaintext);
      if (first.code !== 0) throw new Error(`gpg sign+encrypt failed: ${first.stderr.split('\n')[0]}`);
      const check = await gpg(homeA, pass, openArgs, first.stdout);
      if (check.code !== 0 || !check.stderr.includes('GOODSIG') || check.stdout.toString('utf8') !== plaintext) {
        throw new Error('gpg decrypt+verify of its own message failed');
      }
      const seal = await timed({ ...budget, concurrency, warmup: 2 }, async () => {
        const r = await gpg(homeI, pass, sealArgs, plaintext);
        if (r.code !== 0) throw new Error('gpg sign+encrypt failed');
      });
      const open = await timed({ ...budget, concurrency, warmup: 2 }, async () => {
        const r = await gpg(homeA, pass, openArgs, first.stdout);
        if (r.code !== 0) throw new Error('gpg decrypt+verify failed');
      });
      results.push({ size, seal, open });
    }
    return results;
  } finally {
    for (const home of [homeI, homeA]) spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
    await rm(work, { recursive: true, force: true });
  }
}
