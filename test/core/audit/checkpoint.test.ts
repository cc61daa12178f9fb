import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openAuditLog } from '../../../services/core/audit/auditLog.ts';
import { GENESIS_HASH, entryHash, type AuditEntry } from '../../../services/core/audit/chain.ts';
import { signCheckpoint, verifyCheckpoint } from '../../../services/core/audit/checkpoint.ts';
import { createCheckpointer } from '../../../services/core/audit/checkpointer.ts';
import { checkpointStore, readCheckpointFile } from '../../../services/core/audit/checkpointStore.ts';
import { checkTrailAtStart } from '../../../services/core/audit/startCheck.ts';
import { checkTrail, ownMarks } from '../../../services/core/audit/trailCheck.ts';
import { openAuditLogCuttingTornTail } from '../../../services/core/audit/tornTail.ts';
import { verifyAuditFile } from '../../../services/core/audit/verify.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';

let keys: TestServiceKeyPair;
let dir: string;
let file: string;
let cpFile: string;
let original: string[];

beforeAll(async () => {
  keys = await makeServiceKeyPair();
});
afterAll(async () => {
  await keys?.cleanup();
});

/** A trail of 8 lines with signed checkpoints at seq 3 and seq 6 (lines 7 and 8 come after the last one). */
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-checkpoint-'));
  file = join(dir, 'audit.jsonl');
  cpFile = `${file}.checkpoints`;
  const log = await openAuditLog({ file, service: 'app' });
  const checkpointer = createCheckpointer({ service: 'app', audit: log, key: keys.app.own.current, store: checkpointStore(cpFile), intervalMs: 60_000 });
  for (let i = 1; i <= 8; i++) {
    await log.record({ action: 'inbox.read', actor: 'reader-1', resourceType: 'inbox-record', resourceId: `r${i}`, outcome: 'success' });
    if (i === 3 || i === 6) await checkpointer.checkpoint('interval');
  }
  await log.close();
  original = (await readFile(file, 'utf8')).trimEnd().split('\n');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const appKeys = () => [keys.app.own.current.toPublic()];
const save = (ls: string[]) => writeFile(file, ls.length === 0 ? '' : ls.join('\n') + '\n');

async function check(): Promise<{ ok: boolean; message?: string }> {
  const read = await readCheckpointFile(cpFile);
  if (!read.ok) throw new Error('checkpoint file unreadable');
  const own = await ownMarks(read.checkpoints, 'app', appKeys(), { all: true });
  if ('reason' in own) return { ok: false, message: own.reason };
  const result = await checkTrail(file, own.marks);
  return result.ok ? { ok: true } : { ok: false, message: result.message };
}

/** Recomputes every line's chain after `edit`, as someone who can write the file would. */
function rewriteChain(ls: string[], edit: (e: AuditEntry) => void): string[] {
  let prev = GENESIS_HASH;
  return ls.map((l, i) => {
    const e = JSON.parse(l) as AuditEntry;
    edit(e);
    e.seq = i + 1;
    e.prev = prev;
    e.hash = entryHash(e);
    prev = e.hash;
    return JSON.stringify(e);
  });
}

describe('signed checkpoints', () => {
  it('sign the durable head, and verify only with the service\'s own key', async () => {
    const read = await readCheckpointFile(cpFile);
    expect(read.ok && read.checkpoints.map((c) => c.checkpoint.seq)).toEqual([3, 6]);
    const third = JSON.parse(original[2]!) as AuditEntry;
    expect(read.ok && read.checkpoints[0]!.checkpoint).toMatchObject({ service: 'app', seq: 3, headHash: third.hash });
    expect(read.ok && (await verifyCheckpoint(read.checkpoints[0]!, appKeys()))).toEqual({ ok: true });
    expect(read.ok && (await verifyCheckpoint(read.checkpoints[0]!, [keys.interface.own.current.toPublic()]))).toMatchObject({ ok: false });
    // The signed statement cannot be changed either.
    const moved = read.ok ? { ...read.checkpoints[0]!, checkpoint: { ...read.checkpoints[0]!.checkpoint, seq: 2 } } : undefined;
    expect(await verifyCheckpoint(moved!, appKeys())).toMatchObject({ ok: false });
    expect(await check()).toEqual({ ok: true });
  });
});

describe('tampering that the chain alone missed is detected against the checkpoints', () => {
  it('truncation: the last lines deleted, back past a checkpoint', async () => {
    await save(original.slice(0, 4));
    expect(await verifyAuditFile(file)).toEqual({ ok: true, count: 4 });
    expect((await check()).message).toMatch(/^truncated: the trail ends at seq 4, but the checkpoint signed at \S+ covers seq 6$/);
  });

  it('full rewrite with recomputed hashes', async () => {
    await save(rewriteChain(original, (e) => (e.actor = 'someone-else')));
    expect(await verifyAuditFile(file)).toEqual({ ok: true, count: 8 });
    expect((await check()).message).toMatch(/^line 3: hash differs from the checkpoint signed at \S+ \(trail rewritten\)$/);
  });

  it('an empty file', async () => {
    await save([]);
    expect(await verifyAuditFile(file)).toEqual({ ok: true, count: 0 });
    expect((await check()).message).toMatch(/^empty trail, but the checkpoint signed at \S+ covers seq 6$/);
  });

  it('a forged checkpoint (signed by another key) appended to cover a rewrite', async () => {
    const rewritten = rewriteChain(original, (e) => (e.actor = 'someone-else'));
    await save(rewritten);
    const head = JSON.parse(rewritten[7]!) as AuditEntry;
    const forged = await signCheckpoint({ service: 'app', seq: 8, headHash: head.hash, at: new Date().toISOString() }, keys.interface.own.current);
    await writeFile(cpFile, JSON.stringify(forged) + '\n');
    expect((await check()).message).toMatch(/^checkpoint for seq 8 at \S+: signature is invalid or not by the service's key \(forged checkpoint\)$/);
  });
});

describe('tampering the chain itself detects', () => {
  it('a middle line edited', async () => {
    const ls = [...original];
    ls[4] = ls[4]!.replace('"r5"', '"r9"');
    await save(ls);
    expect(await check()).toEqual({ ok: false, message: 'line 5: hash mismatch (entry was altered)' });
  });

  it('a line deleted', async () => {
    await save(original.filter((_, i) => i !== 4));
    expect(await check()).toEqual({ ok: false, message: 'line 5: seq 6, expected 5' });
  });

  it('lines reordered', async () => {
    const ls = [...original];
    [ls[1], ls[2]] = [ls[2]!, ls[1]!];
    await save(ls);
    expect(await check()).toEqual({ ok: false, message: 'line 2: seq 3, expected 2' });
  });
});

describe('checkTrailAtStart', () => {
  const opts = (accept?: string) => ({ file, checkpointFile: cpFile, service: 'app', keys: appKeys(), acceptDigest: accept });

  it('lets an intact trail start, with its head', async () => {
    const last = JSON.parse(original[7]!) as AuditEntry;
    expect(await checkTrailAtStart(opts())).toEqual({ status: 'ok', head: { seq: 8, hash: last.hash }, unusedOverride: false, torn: [] });
  });

  it('lets a new service start (no trail, no checkpoints)', async () => {
    await rm(file);
    await rm(cpFile);
    expect(await checkTrailAtStart(opts())).toMatchObject({ status: 'ok', head: { seq: 0 } });
  });

  it('refuses a truncated trail, naming the sha256 to accept; only that exact state is accepted, archived and reported', async () => {
    await save(original.slice(0, 4));
    const digest = createHash('sha256').update(await readFile(file)).digest('hex');
    const refused = checkTrailAtStart(opts());
    await expect(refused).rejects.toMatchObject({ code: 'CR_AUDIT_TRAIL_UNVERIFIED' });
    await expect(refused).rejects.toThrow(`set AUDIT_ACCEPT_BROKEN_TRAIL=${digest}`);
    // A digest of another state (e.g. before a further edit) is not accepted.
    await expect(checkTrailAtStart(opts('0'.repeat(64)))).rejects.toMatchObject({ code: 'CR_AUDIT_TRAIL_UNVERIFIED' });
    const accepted = await checkTrailAtStart(opts(digest));
    expect(accepted).toMatchObject({ status: 'overridden', digest, head: { seq: 4 }, reason: expect.stringMatching(/^truncated/) });
    if (accepted.status !== 'overridden') throw new Error('expected overridden');
    expect(await stat(accepted.archived.trail!)).toBeTruthy();
    expect(await stat(accepted.archived.checkpoints!)).toBeTruthy();
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    // The new trail starts fresh.
    expect(await checkTrailAtStart(opts(digest))).toMatchObject({ status: 'ok', unusedOverride: true });
  });

  it('moves a write a crash cut short aside, byte for byte, and goes on from the last complete line', async () => {
    const torn = '{"seq":9,"ts":"2026-12-02T14:45:0';
    await appendFile(file, torn);
    const started = await checkTrailAtStart(opts());
    expect(started).toMatchObject({ status: 'ok', head: { seq: 8 }, torn: [{ of: 'trail', bytes: torn.length }] });
    expect(started.torn).toHaveLength(1);
    expect(await readFile(started.torn[0]!.savedAs, 'utf8')).toBe(torn);
    expect((await readFile(file, 'utf8')).trimEnd().split('\n')).toEqual(original);
    // The writer continues the chain; the next start has nothing to move.
    const log = await openAuditLog({ file, service: 'app' });
    await log.record({ action: 'inbox.read', actor: 'reader-1', resourceType: 'inbox-record', resourceId: 'r9', outcome: 'success' });
    await log.close();
    expect(await verifyAuditFile(file)).toEqual({ ok: true, count: 9 });
    expect(await checkTrailAtStart(opts())).toMatchObject({ status: 'ok', torn: [] });
  });

  it('a trail that is nothing but an incomplete line starts anew only if no checkpoint covers it', async () => {
    await writeFile(file, '{"seq":1,"ts":"2026-');
    await expect(checkTrailAtStart(opts())).rejects.toThrow(/does not verify: empty trail, but the checkpoint signed at .* covers seq 6/);
    // A first write cut short, before any checkpoint: the service starts at genesis.
    await rm(cpFile);
    await writeFile(file, '{"seq":1,"ts":"2026-');
    expect(await checkTrailAtStart(opts())).toMatchObject({ status: 'ok', head: { seq: 0 }, torn: [{ of: 'trail', bytes: 20 }] });
    expect(await readFile(file, 'utf8')).toBe('');
  });

  it('leaves more than 1 MiB after the last newline as it is (no write cut short leaves that): the start is refused', async () => {
    await appendFile(file, 'x'.repeat(1024 * 1024 + 1));
    const before = await readFile(file);
    await expect(checkTrailAtStart(opts())).rejects.toThrow(/does not verify: .*incomplete last line/);
    expect((await readFile(file)).equals(before)).toBe(true);
  });

  it('moves a checkpoint that a crash cut short aside too, and checks against the complete ones', async () => {
    const checkpoints = await readFile(cpFile, 'utf8');
    const torn = checkpoints.trimEnd().split('\n').at(-1)!.slice(0, 50);
    await appendFile(cpFile, torn);
    const started = await checkTrailAtStart(opts());
    expect(started).toMatchObject({ status: 'ok', head: { seq: 8 }, torn: [{ of: 'checkpoints', bytes: torn.length }] });
    expect(await readFile(started.torn[0]!.savedAs, 'utf8')).toBe(torn);
    expect(await readFile(cpFile, 'utf8')).toBe(checkpoints);
    // The complete checkpoints still count: a truncation past them is refused.
    await save(original.slice(0, 4));
    await appendFile(cpFile, torn);
    await expect(checkTrailAtStart(opts())).rejects.toThrow(/does not verify: truncated/);
  });

  it('still refuses a truncation past a checkpoint when the truncated trail also ends in an incomplete line', async () => {
    await save(original.slice(0, 4));
    await appendFile(file, original[4]!.slice(0, 30));
    await expect(checkTrailAtStart(opts())).rejects.toThrow(/does not verify: truncated/);
  });

  it('refuses a trail whose middle line is broken', async () => {
    const ls = [...original];
    ls[4] = ls[4]!.replace('"r5"', '"r9"');
    await save(ls);
    await expect(checkTrailAtStart(opts())).rejects.toThrow(/does not verify: line 5: hash mismatch/);
  });

  it('refuses a trail whose checkpoint file was deleted', async () => {
    await rm(cpFile);
    await expect(checkTrailAtStart(opts())).rejects.toThrow(/the trail has 8 lines but no signed checkpoint/);
  });

  it('refuses a missing trail when checkpoints exist', async () => {
    await rm(file);
    await expect(checkTrailAtStart(opts())).rejects.toThrow(/the trail is missing, but a signed checkpoint covers seq 6/);
  });

  it('refuses a forged last checkpoint', async () => {
    const forged = await signCheckpoint({ service: 'app', seq: 8, headHash: (JSON.parse(original[7]!) as AuditEntry).hash, at: new Date().toISOString() }, keys.interface.own.current);
    await writeFile(cpFile, JSON.stringify(forged) + '\n', { flag: 'a' });
    await expect(checkTrailAtStart(opts())).rejects.toThrow(/forged checkpoint/);
  });
});

describe('openAuditLogCuttingTornTail (the CLI\'s own trails)', () => {
  it('moves a write cut short aside, and records it as the first new line, by the given actor', async () => {
    const torn = '{"seq":9,"ts":"2026-12-02T16:5';
    await appendFile(file, torn);
    const { audit, torn: cut } = await openAuditLogCuttingTornTail({ file, service: 'cli', actor: 'cli:tester' });
    await audit.record({ action: 'message.purged', actor: 'cli:tester', resourceType: 'envelope', resourceId: 'e1', outcome: 'success' });
    await audit.close();
    expect(cut).toMatchObject({ bytes: torn.length, savedAs: expect.stringMatching(/audit\.jsonl\.torn-[0-9a-f]{16}$/) });
    expect(await readFile(cut!.savedAs, 'utf8')).toBe(torn);
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    expect(lines.slice(0, 8)).toEqual(original);
    expect(JSON.parse(lines[8]!)).toMatchObject({ seq: 9, action: 'audit.torn_tail', actor: 'cli:tester', service: 'cli', details: { of: 'trail', bytes: torn.length, savedAs: cut!.savedAs, afterSeq: 8 } });
    expect(JSON.parse(lines[9]!)).toMatchObject({ seq: 10, action: 'message.purged' });
    expect(await verifyAuditFile(file)).toEqual({ ok: true, count: 10 });
    const again = await openAuditLogCuttingTornTail({ file, service: 'cli', actor: 'cli:tester' });
    await again.audit.close();
    expect(again.torn).toBeUndefined();
  });

  it('still refuses a last complete line that does not chain, and names where the incomplete one went', async () => {
    await save([...original.slice(0, 7), 'not a chained line']);
    const torn = '{"seq":9,"ts"';
    await appendFile(file, torn);
    const refused = await openAuditLogCuttingTornTail({ file, service: 'cli', actor: 'cli:tester' }).catch((err: unknown) => err);
    expect(refused).toMatchObject({ code: 'CR_AUDIT_TAIL_BROKEN', message: expect.stringMatching(/\(its incomplete last line, 13 bytes, was moved to .*audit\.jsonl\.torn-[0-9a-f]{16} first\)$/) });
    const savedAs = /moved to (.*) first\)$/.exec((refused as Error).message)![1]!;
    expect(await readFile(savedAs, 'utf8')).toBe(torn);
    expect(await readFile(file, 'utf8')).toBe([...original.slice(0, 7), 'not a chained line'].join('\n') + '\n');
  });
});
