import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAuditLog } from '../../services/core/audit/auditLog.ts';

const main = resolve(import.meta.dirname, '../../services/cli/main.ts');
let dir: string;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [main, 'audit', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-cli-audit-'));
  const log = await openAuditLog({ file: join(dir, 'good.jsonl'), service: 'app' });
  for (let i = 0; i < 3; i++) await log.record({ action: 'sms.sent', actor: 'app', resourceType: 'sms', outcome: 'success' });
  await log.close();
  const text = await readFile(join(dir, 'good.jsonl'), 'utf8');
  await writeFile(join(dir, 'bad.jsonl'), text.replace('"actor":"app"', '"actor":"eve"'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('care-relay audit verify', () => {
  it('prints ok and exits 0 for an intact trail', () => {
    expect(cli('verify', join(dir, 'good.jsonl'))).toMatchObject({ code: 0, stdout: 'ok: 3 entries\n' });
  });

  it('names the first bad line and exits 1', () => {
    expect(cli('verify', join(dir, 'bad.jsonl'))).toMatchObject({ code: 1, stdout: 'line 1: hash mismatch (entry was altered)\n' });
  });

  it('exits 1 with one line for an unreadable file', () => {
    const r = cli('verify', join(dir, 'missing.jsonl'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^care-relay audit: audit trail .*missing\.jsonl: cannot read \(ENOENT\)\n$/);
  });

  it('exits 2 with usage for a wrong invocation', () => {
    const r = cli('check');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('usage: care-relay audit verify FILE');
  });
});
