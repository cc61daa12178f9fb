// A delivery receipt is an envelope like any other: GnuPG alone reads it (docs/wire-format.md,
// "Kind delivery.receipt"), and the body holds ids, codes and times only.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope } from '../../../services/core/envelope/envelope.ts';
import { seal } from '../../../services/core/envelope/seal.ts';
import { uuidv7 } from '../../../services/core/envelope/uuidv7.ts';
import { encodeReceipt, encodeReceipts, RECEIPT_CONTENT_TYPE, RECEIPT_KIND, RECEIPTS_CONTENT_TYPE, type Receipt } from '../../../services/core/receipts/receipt.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';

let keys: TestServiceKeyPair;
let work: string;
let home: string;

function gpg(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('gpg', ['--homedir', home, '--batch', '--no-tty', '--quiet', '--trust-model', 'always', '--pinentry-mode', 'loopback', '--passphrase-file', join(work, 'pass'), ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  keys = await makeServiceKeyPair();
  // Short path: gpg-agent's socket path must stay under the Unix socket limit.
  work = await mkdtemp(join(tmpdir(), 'crr-'));
  home = join(work, 'h');
  await mkdir(home, { mode: 0o700 });
  await writeFile(join(work, 'pass'), keys.interface.passphrase, { mode: 0o600 });
  expect(gpg(['--import', join(keys.interface.dir, 'private.asc')]).status).toBe(0);
  expect(gpg(['--import', join(keys.interface.dir, 'peers', 'app.asc')]).status).toBe(0);
});
afterAll(async () => {
  spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
  await rm(work, { recursive: true, force: true });
  await keys.cleanup();
});

describe('delivery receipts with gpg alone', () => {
  it("the interface's gpg decrypts the app's `rejected` receipt, verifies the app's signature, and reads the referenced id and reason code", async () => {
    const ref = uuidv7();
    const receipt = { ref, status: 'rejected', at: new Date().toISOString(), reasonCode: 'CR_ENVELOPE_TOO_OLD', disposition: 'quarantined' } as const;
    const envelope = buildEnvelope({ kind: RECEIPT_KIND, from: 'app', to: 'interface', queue: 'app-to-interface', contentType: RECEIPT_CONTENT_TYPE, body: encodeReceipt(receipt) });
    const sealed = await seal(envelope, keys.app.own, keys.app.peers);
    await writeFile(join(work, 'r.asc'), sealed.body);
    const r = gpg(['--status-fd', '1', '--output', join(work, 'r.json'), '--decrypt', join(work, 'r.asc')]);
    expect(r.status, r.stderr).toBe(0);
    const validsig = r.stdout.split('\n').find((l) => l.startsWith('[GNUPG:] VALIDSIG '))!;
    expect(validsig.trim().split(' ').at(-1)).toBe(keys.app.fingerprint);
    const opened = JSON.parse(await readFile(join(work, 'r.json'), 'utf8')) as { kind: string; partner?: string; body: string };
    expect(opened.kind).toBe('delivery.receipt');
    expect(opened.partner).toBeUndefined();
    expect(JSON.parse(opened.body)).toEqual(receipt);
  });

  it('reads several receipts in one envelope the same way: `{"receipts":[...]}` under the plural content type', async () => {
    const receipts: Receipt[] = [
      { ref: uuidv7(), status: 'held', at: new Date().toISOString() },
      { ref: uuidv7(), status: 'acknowledged', at: new Date().toISOString() },
    ];
    const envelope = buildEnvelope({ kind: RECEIPT_KIND, from: 'app', to: 'interface', queue: 'app-to-interface', contentType: RECEIPTS_CONTENT_TYPE, body: encodeReceipts(receipts) });
    const sealed = await seal(envelope, keys.app.own, keys.app.peers);
    await writeFile(join(work, 'rs.asc'), sealed.body);
    const r = gpg(['--status-fd', '1', '--output', join(work, 'rs.json'), '--decrypt', join(work, 'rs.asc')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n').find((l) => l.startsWith('[GNUPG:] VALIDSIG '))?.trim().split(' ').at(-1)).toBe(keys.app.fingerprint);
    const opened = JSON.parse(await readFile(join(work, 'rs.json'), 'utf8')) as { kind: string; contentType: string; body: string };
    expect(opened.kind).toBe('delivery.receipt');
    expect(opened.contentType).toBe('application/vnd.care-relay.receipts+json');
    expect(JSON.parse(opened.body)).toEqual({ receipts });
  });
});
