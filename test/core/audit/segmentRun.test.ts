import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openAuditLog } from '../../../services/core/audit/auditLog.ts';
import { entryHash, type AuditEntry } from '../../../services/core/audit/chain.ts';
import { createCheckpointer } from '../../../services/core/audit/checkpointer.ts';
import { checkpointStore, readCheckpointFile } from '../../../services/core/audit/checkpointStore.ts';
import { listClosedSegments, type ClosedSegment } from '../../../services/core/audit/segments.ts';
import { checkTrailAtStart } from '../../../services/core/audit/startCheck.ts';
import { checkRun, ownMarks } from '../../../services/core/audit/trailCheck.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';

let keys: TestServiceKeyPair;
let dir: string;
let file: string;
let cpFile: string;
let segments: ClosedSegment[];

beforeAll(async () => {
  keys = await makeServiceKeyPair();
});
afterAll(async () => {
  await keys?.cleanup();
});

/** A trail of 20 lines in several closed segments and an open one, a checkpoint signed at each rotation and at the end. */
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-segrun-'));
  file = join(dir, 'app-audit.jsonl');
  cpFile = `${file}.checkpoints`;
  const rotations: Array<Promise<unknown>> = [];
  const ref: { checkpointer?: ReturnType<typeof createCheckpointer> } = {};
  const log = await openAuditLog({
    file,
    service: 'app',
    rotation: { maxBytes: 1200 },
    onRotation: (e) => void ('closed' in e && rotations.push(ref.checkpointer!.checkpoint('rotation'))),
  });
  const checkpointer = (ref.checkpointer = createCheckpointer({ service: 'app', audit: log, key: keys.app.own.current, store: checkpointStore(cpFile), intervalMs: 60_000 }));
  for (let i = 1; i <= 20; i++) await log.record({ action: 'inbox.read', actor: 'reader-1', resourceType: 'inbox-record', resourceId: `r${i}`, outcome: 'success' });
  await Promise.all(rotations);
  await checkpointer.checkpoint('shutdown');
  await log.close();
  segments = await listClosedSegments(file);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const appKeys = () => [keys.app.own.current.toPublic()];

async function verifyRun(files = segments.map((s) => s.path)): Promise<{ ok: boolean; message?: string; head?: number }> {
  const read = await readCheckpointFile(cpFile);
  if (!read.ok) throw new Error('checkpoint file unreadable');
  const own = await ownMarks(read.checkpoints, 'app', appKeys(), { all: true });
  if ('reason' in own) return { ok: false, message: own.reason };
  const byPath = new Map(segments.map((s) => [s.path, s]));
  const result = await checkRun([...files.map((path) => ({ path, range: byPath.get(path) })), { path: file }], own.marks);
  return result.ok ? { ok: true, head: result.head.seq } : { ok: false, message: result.message };
}

const lines = async (path: string): Promise<string[]> => (await readFile(path, 'utf8')).trimEnd().split('\n');
const save = (path: string, ls: string[]) => writeFile(path, ls.length === 0 ? '' : ls.join('\n') + '\n');

describe('a run of segments', () => {
  it('has several closed segments and verifies as one chain to the head', async () => {
    expect(segments.length).toBeGreaterThanOrEqual(3);
    expect(await verifyRun()).toEqual({ ok: true, head: 20 });
  });

  it('a segment missing in the middle', async () => {
    const missing = segments[1]!;
    const r = await verifyRun(segments.filter((s) => s !== missing).map((s) => s.path));
    expect(r).toMatchObject({ ok: false, message: expect.stringContaining(`begins at seq ${segments[2]!.first}, expected ${missing.first}: a segment is missing before it`) });
  });

  it('segments given out of order', async () => {
    const order = [segments[0]!, segments[2]!, segments[1]!, ...segments.slice(3)].map((s) => s.path);
    expect(await verifyRun(order)).toMatchObject({ ok: false, message: expect.stringContaining('a segment is missing before it') });
  });

  it('two segments whose contents were swapped (names kept)', async () => {
    const [a, b] = [segments[0]!.path, segments[1]!.path];
    await rename(a, `${a}.tmp`);
    await rename(b, a);
    await rename(`${a}.tmp`, b);
    expect(await verifyRun()).toMatchObject({ ok: false, message: expect.stringContaining(`segment ${basename(a)}: line 1: seq ${segments[1]!.first}, expected 1`) });
  });

  it('a closed segment truncated (its last line removed)', async () => {
    const s = segments[1]!;
    await save(s.path, (await lines(s.path)).slice(0, -1));
    expect(await verifyRun()).toMatchObject({ ok: false, message: expect.stringContaining(`segment ${basename(s.path)}: ends at seq ${s.last - 1}, but its name says seq ${s.last}`) });
  });

  it('a broken link between segments: a segment rewritten with a consistent chain from another prev', async () => {
    const s = segments[2]!;
    let prev = 'a'.repeat(64);
    const rewritten = (await lines(s.path)).map((l) => {
      const e = JSON.parse(l) as AuditEntry;
      e.prev = prev;
      e.hash = entryHash(e);
      prev = e.hash;
      return JSON.stringify(e);
    });
    await save(s.path, rewritten);
    expect(await verifyRun()).toMatchObject({ ok: false, message: expect.stringContaining(`segment ${basename(s.path)}: line 1: prev does not match the hash of seq ${s.first - 1} (the previous segment's last line)`) });
  });

  it('an edited line inside a closed segment', async () => {
    const s = segments[1]!;
    const ls = await lines(s.path);
    await save(s.path, ls.map((l, i) => (i === 1 ? l.replace('"actor":"reader-1"', '"actor":"eve"') : l)));
    expect(await verifyRun()).toMatchObject({ ok: false, message: `segment ${basename(s.path)}: line 2: hash mismatch (entry was altered)` });
  });
});

describe('the start check with segments', () => {
  const start = (acceptDigest?: string) => checkTrailAtStart({ file, checkpointFile: cpFile, service: 'app', keys: appKeys(), acceptDigest });

  it('lets a service with several segments start, with the head', async () => {
    expect(await start()).toMatchObject({ status: 'ok', head: { seq: 20 } });
  });

  it('reads only from the segment of the newest checkpoint on: an older segment edited is left to `audit verify` (documented)', async () => {
    const s = segments[0]!;
    const ls = await lines(s.path);
    await save(s.path, ls.map((l, i) => (i === 0 ? l.replace('"actor":"reader-1"', '"actor":"eve"') : l)));
    expect(await start()).toMatchObject({ status: 'ok', head: { seq: 20 } });
    expect(await verifyRun()).toMatchObject({ ok: false });
  });

  it('refuses a last closed segment whose end was rewritten (the line the rotation checkpoint signed)', async () => {
    const s = segments.at(-1)!;
    // A rewrite with recomputed hashes: the line parses, but is not the one the name (and the chain after it) holds.
    const ls = await lines(s.path);
    const e = JSON.parse(ls.at(-1)!) as AuditEntry;
    e.actor = 'eve';
    e.hash = entryHash(e);
    await save(s.path, [...ls.slice(0, -1), JSON.stringify(e)]);
    await expect(start()).rejects.toMatchObject({ code: 'CR_AUDIT_TRAIL_UNVERIFIED' });
  });

  it('refuses a run truncated below the newest checkpoint, and accepts it only by its digest: every segment is set aside', async () => {
    // The last line of the run (in the open segment, or in the last closed one when a rotation just emptied it).
    const holder = (await readFile(file, 'utf8')) === '' ? segments.at(-1)!.path : file;
    await save(holder, (await lines(holder)).slice(0, -1));
    const err = (await start().catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/truncated: the trail ends at seq 19, but the checkpoint signed|ends at seq 19, but its name says seq 20: the segment was truncated/);
    const digest = /AUDIT_ACCEPT_BROKEN_TRAIL=([0-9a-f]{64})/.exec(err.message)![1]!;
    const result = await start(digest);
    expect(result).toMatchObject({ status: 'overridden', archived: { segments: segments.length } });
    expect(await listClosedSegments(file)).toEqual([]);
    expect(await start()).toMatchObject({ status: 'ok', head: { seq: 0 } });
  });

  it('refuses a trail whose open segment was deleted together with the last closed segment', async () => {
    await rm(file);
    await rm(segments.at(-1)!.path);
    await expect(start()).rejects.toThrow(/not on this host|truncated/);
  });

  it('refuses a missing segment before the open one when the newest checkpoint lies in an older segment', async () => {
    // Keep only the first checkpoint (signed at the first rotation), then remove the segment after the one it falls in.
    const cps = (await readFile(cpFile, 'utf8')).trimEnd().split('\n');
    await writeFile(cpFile, cps[0] + '\n');
    const seq = (JSON.parse(cps[0]!) as { checkpoint: { seq: number } }).checkpoint.seq;
    const k = segments.findIndex((s) => s.first <= seq && seq <= s.last);
    expect(k, 'the checkpoint falls in a closed segment before the last').toBeLessThan(segments.length - 1);
    await rm(segments[k + 1]!.path);
    await expect(start()).rejects.toThrow(/a segment is missing before it/);
  });
});
