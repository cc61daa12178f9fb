import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openAuditLog } from '../../../services/core/audit/auditLog.ts';
import { entryHash, type AuditEntry } from '../../../services/core/audit/chain.ts';
import { verifyAuditFile } from '../../../services/core/audit/verify.ts';

let dir: string;
let file: string;
let original: string[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-verify-'));
  file = join(dir, 'audit.jsonl');
  const log = await openAuditLog({ file, service: 'app' });
  for (let i = 1; i <= 6; i++) {
    await log.record({ action: 'inbox.read', actor: 'reader-1', resourceType: 'inbox-record', resourceId: `r${i}`, outcome: 'success' });
  }
  await log.close();
  original = (await readFile(file, 'utf8')).trimEnd().split('\n');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const save = (ls: string[]) => writeFile(file, ls.join('\n') + '\n');

describe('verifyAuditFile', () => {
  it('accepts an intact trail and an empty one', async () => {
    expect(await verifyAuditFile(file)).toEqual({ ok: true, count: 6 });
    await writeFile(file, '');
    expect(await verifyAuditFile(file)).toEqual({ ok: true, count: 0 });
  });

  it('detects an edited entry at its line', async () => {
    const ls = [...original];
    ls[2] = ls[2]!.replace('"r3"', '"r9"');
    await save(ls);
    expect(await verifyAuditFile(file)).toEqual({ ok: false, line: 3, reason: 'hash mismatch (entry was altered)' });
  });

  it('detects an edited entry whose own hash was recomputed, at the next line', async () => {
    const ls = [...original];
    const e = JSON.parse(ls[2]!) as AuditEntry;
    e.actor = 'someone-else';
    e.hash = entryHash(e);
    ls[2] = JSON.stringify(e);
    await save(ls);
    expect(await verifyAuditFile(file)).toEqual({ ok: false, line: 4, reason: 'prev does not match the hash of line 3' });
  });

  it('detects a deleted entry', async () => {
    await save(original.filter((_, i) => i !== 3));
    expect(await verifyAuditFile(file)).toEqual({ ok: false, line: 4, reason: 'seq 5, expected 4' });
  });

  it('detects a deleted first entry', async () => {
    await save(original.slice(1));
    expect(await verifyAuditFile(file)).toEqual({ ok: false, line: 1, reason: 'seq 2, expected 1' });
  });

  it('detects an inserted entry, even one with a plausible seq and prev', async () => {
    const prevEntry = JSON.parse(original[1]!) as AuditEntry;
    const forged: Omit<AuditEntry, 'hash'> = { ...prevEntry, seq: 3, resourceId: 'forged', prev: prevEntry.hash };
    const ls = [...original.slice(0, 2), JSON.stringify({ ...forged, hash: entryHash(forged) }), ...original.slice(2)];
    await save(ls);
    expect(await verifyAuditFile(file)).toEqual({ ok: false, line: 4, reason: 'seq 3, expected 4' });
  });

  it('detects reordered entries', async () => {
    const ls = [...original];
    [ls[3], ls[4]] = [ls[4]!, ls[3]!];
    await save(ls);
    expect(await verifyAuditFile(file)).toEqual({ ok: false, line: 4, reason: 'seq 5, expected 4' });
  });

  it('detects malformed JSON, blank lines and a truncated last line', async () => {
    await save([...original.slice(0, 5), '{not json']);
    expect(await verifyAuditFile(file)).toEqual({ ok: false, line: 6, reason: 'malformed JSON' });
    await save([...original.slice(0, 2), '', ...original.slice(2)]);
    expect(await verifyAuditFile(file)).toEqual({ ok: false, line: 3, reason: 'empty line' });
    await writeFile(file, original.join('\n'));
    expect(await verifyAuditFile(file)).toEqual({ ok: false, line: 6, reason: 'incomplete last line (no trailing newline)' });
  });

  it('detects a missing field', async () => {
    const ls = [...original];
    const e = JSON.parse(ls[0]!) as Record<string, unknown>;
    delete e.hash;
    ls[0] = JSON.stringify(e);
    await save(ls);
    expect(await verifyAuditFile(file)).toEqual({ ok: false, line: 1, reason: 'missing or invalid hash' });
  });

  it('throws a coded error for a missing file', async () => {
    await expect(verifyAuditFile(join(dir, 'nope.jsonl'))).rejects.toMatchObject({ code: 'CR_AUDIT_UNREADABLE' });
  });
});
