import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAuditLog } from '../../services/core/audit/auditLog.ts';
import type { AuditEntry } from '../../services/core/audit/chain.ts';
import { signCheckpoint } from '../../services/core/audit/checkpoint.ts';
import { createCheckpointer } from '../../services/core/audit/checkpointer.ts';
import { checkpointStore } from '../../services/core/audit/checkpointStore.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../helpers/keys.ts';

const main = resolve(import.meta.dirname, '../../services/cli/main.ts');
let dir: string;
let keys: TestServiceKeyPair;
let lines: string[];

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [main, 'audit', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  keys = await makeServiceKeyPair();
  dir = await mkdtemp(join(tmpdir(), 'cr-cli-audit-'));
  const file = join(dir, 'good.jsonl');
  const log = await openAuditLog({ file, service: 'app' });
  const cp = createCheckpointer({ service: 'app', audit: log, key: keys.app.own.current, store: checkpointStore(`${file}.checkpoints`), intervalMs: 60_000 });
  for (let i = 0; i < 3; i++) await log.record({ action: 'sms.sent', actor: 'app', resourceType: 'sms', outcome: 'success' });
  await cp.checkpoint('interval');
  await log.close();
  const text = await readFile(file, 'utf8');
  lines = text.trimEnd().split('\n');
  await writeFile(join(dir, 'bad.jsonl'), text.replace('"actor":"app"', '"actor":"eve"'));
  await writeFile(join(dir, 'cut.jsonl'), lines.slice(0, 2).join('\n') + '\n');
  const checkpoints = await readFile(`${file}.checkpoints`, 'utf8');
  await writeFile(join(dir, 'bad.jsonl.checkpoints'), checkpoints);
  await writeFile(join(dir, 'cut.jsonl.checkpoints'), checkpoints);

  // The interface's trail witnessed the app's head at seq 3, but with another hash: the app trail was rewritten since.
  const peer = await openAuditLog({ file: join(dir, 'iface.jsonl'), service: 'interface' });
  await peer.record({ action: 'audit.witnessed', actor: 'interface', resourceType: 'audit-checkpoint', resourceId: 'app:3', outcome: 'success', details: { service: 'app', seq: 3, headHash: 'f'.repeat(64), at: new Date().toISOString() } });
  await peer.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await keys?.cleanup();
});

describe('care-relay audit verify', () => {
  it('prints ok with the head and the checkpoints, and exits 0 for an intact trail', () => {
    const head = JSON.parse(lines[2]!) as AuditEntry;
    expect(cli('verify', join(dir, 'good.jsonl'), '--key', keys.app.dir)).toMatchObject({ code: 0, stdout: `ok: 3 entries, head seq 3 hash ${head.hash}; 1 signed checkpoints (last at seq 3)\n` });
  });

  it('names the first bad line and exits 1', () => {
    expect(cli('verify', join(dir, 'bad.jsonl'), '--key', join(keys.app.dir, 'public.asc'))).toMatchObject({ code: 1, stdout: 'line 1: hash mismatch (entry was altered)\n' });
  });

  it('reports truncation after the last checkpoint', () => {
    const r = cli('verify', join(dir, 'cut.jsonl'), '--key', keys.app.dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^truncated: the trail ends at seq 2, but the checkpoint signed at \S+ covers seq 3\n$/);
    // The chain alone does not see it.
    expect(cli('verify', join(dir, 'cut.jsonl'), '--chain-only')).toMatchObject({ code: 0 });
  });

  it('reports checkpoints signed by another key as forged', () => {
    const r = cli('verify', join(dir, 'good.jsonl'), '--key', keys.interface.dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/\(forged checkpoint\)\n$/);
  });

  it('checks the checkpoints the peer witnessed, with --witness', () => {
    const r = cli('verify', join(dir, 'good.jsonl'), '--key', keys.app.dir, '--witness', join(dir, 'iface.jsonl'));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^line 3: hash differs from the checkpoint witnessed by interface at \S+ \(trail rewritten\)\n$/);
  });

  it('refuses to call a trail without checkpoints good, unless --chain-only', async () => {
    const bare = join(dir, 'bare.jsonl');
    await writeFile(bare, lines.join('\n') + '\n');
    expect(cli('verify', bare, '--key', keys.app.dir)).toMatchObject({ code: 1, stdout: `no checkpoint file ${bare}.checkpoints: give --checkpoints FILE, or --chain-only to check the chain alone\n` });
    expect(cli('verify', bare, '--key', keys.app.dir, '--checkpoints', join(dir, 'good.jsonl.checkpoints'))).toMatchObject({ code: 0 });
    expect(cli('verify', bare, '--chain-only').stdout).toMatch(/^ok: 3 entries, head seq 3 hash [0-9a-f]{64} \(chain only/);
  });

  it('a forged checkpoint in the file is reported even when the trail matches it', async () => {
    const file = join(dir, 'forged.jsonl');
    await writeFile(file, lines.join('\n') + '\n');
    const head = JSON.parse(lines[2]!) as AuditEntry;
    const forged = await signCheckpoint({ service: 'app', seq: 3, headHash: head.hash, at: new Date().toISOString() }, keys.interface.own.current);
    await writeFile(`${file}.checkpoints`, (await readFile(join(dir, 'good.jsonl.checkpoints'), 'utf8')) + JSON.stringify(forged) + '\n');
    expect(cli('verify', file, '--key', keys.app.dir).stdout).toMatch(/^checkpoint for seq 3 at \S+: .*\(forged checkpoint\)\n$/);
  });

  it('exits 1 with one line for an unreadable file', () => {
    const r = cli('verify', join(dir, 'missing.jsonl'), '--chain-only');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^care-relay audit: audit trail .*missing\.jsonl: cannot read \(ENOENT\)\n$/);
  });

  it('exits 2 with usage for a wrong invocation or a missing --key', () => {
    const r = cli('check');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('usage: care-relay audit verify TRAIL...');
    expect(cli('verify', join(dir, 'good.jsonl'))).toMatchObject({ code: 2, stderr: expect.stringContaining('--key is required') });
  });
});
