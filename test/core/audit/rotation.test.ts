import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openAuditLog, type OpenAuditLogOptions } from '../../../services/core/audit/auditLog.ts';
import type { AuditEntry } from '../../../services/core/audit/chain.ts';
import { listClosedSegments, parseSegmentName, type ClosedSegment } from '../../../services/core/audit/segments.ts';
import { checkRun } from '../../../services/core/audit/trailCheck.ts';
import type { AuditEvent } from '../../../services/core/audit/types.ts';

const PHI = 'Jane Q Patient 555-867-5309';
const event = (n: number): AuditEvent => ({ action: 'inbox.read', actor: 'reader-1', resourceType: 'inbox-record', resourceId: `r${n}`, outcome: 'success', details: { n } });

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-rotation-'));
  file = join(dir, 'app-audit.jsonl');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A clock the test moves by hand. */
function fakeClock(start = Date.parse('2026-03-01T00:00:00.000Z')): { now: () => Date; advance: (ms: number) => void } {
  let t = start;
  return { now: () => new Date(t), advance: (ms) => void (t += ms) };
}

async function entries(path: string): Promise<AuditEntry[]> {
  const text = await readFile(path, 'utf8');
  return text === '' ? [] : text.trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEntry);
}

/** Every line of the run (closed segments in order, then the open one). */
async function runEntries(): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for (const s of await listClosedSegments(file)) out.push(...(await entries(s.path)));
  out.push(...(await entries(file).catch(() => [])));
  return out;
}

async function runCheck() {
  const closed = await listClosedSegments(file);
  return checkRun([...closed.map((c) => ({ path: c.path, range: c })), { path: file }], []);
}

function open(extra: Partial<OpenAuditLogOptions> = {}) {
  const closed: ClosedSegment[] = [];
  const log = openAuditLog({ file, service: 'app', onRotation: (e) => void ('closed' in e && closed.push(e.closed)), ...extra });
  return { log, closed };
}

describe('audit trail rotation', () => {
  it('by size: closes a segment once it reaches AUDIT_ROTATE_BYTES; seq and chain continue in the next', async () => {
    const { log: opening, closed } = open({ rotation: { maxBytes: 1000 } });
    const log = await opening;
    for (let i = 1; i <= 20; i++) await log.record(event(i));
    await log.close();

    expect(closed.length).toBeGreaterThanOrEqual(2);
    const listed = await listClosedSegments(file);
    expect(listed.map((s) => s.path)).toEqual(closed.map((s) => s.path));
    for (const s of listed) expect((await stat(s.path)).size).toBeGreaterThanOrEqual(1000);
    for (const [i, s] of listed.entries()) {
      const lines = await entries(s.path);
      expect([lines[0]!.seq, lines.at(-1)!.seq]).toEqual([s.first, s.last]);
      expect(lines.at(-1)!.hash.startsWith(s.hashPrefix)).toBe(true);
      if (i > 0) {
        expect(s.first).toBe(listed[i - 1]!.last + 1);
        const before = await entries(listed[i - 1]!.path);
        expect(lines[0]!.prev, 'the first line links to the last hash of the previous segment').toBe(before.at(-1)!.hash);
      }
    }
    expect((await runEntries()).map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(await runCheck()).toMatchObject({ ok: true, count: 20, head: { seq: 20 } });
  });

  it('by age (fake clock): a segment older than AUDIT_ROTATE_SECONDS is closed before the next write or on rotateIfDue, never an empty one', async () => {
    const clock = fakeClock();
    const { log: opening, closed } = open({ rotation: { maxAgeMs: 3_600_000 }, now: clock.now });
    const log = await opening;
    await log.rotateIfDue();
    expect(closed, 'an empty segment is never closed').toEqual([]);
    await log.record(event(1));
    await log.record(event(2));
    clock.advance(3_599_999);
    await log.rotateIfDue();
    expect(closed).toEqual([]);
    clock.advance(1);
    await log.rotateIfDue();
    expect(closed.map((c) => [c.first, c.last])).toEqual([[1, 2]]);
    await log.rotateIfDue();
    expect(closed, 'the new segment is empty: nothing to close').toHaveLength(1);
    await log.record(event(3));
    clock.advance(3_600_000);
    // Due before the write: line 4 opens a new segment rather than joining the old one.
    await log.record(event(4));
    await log.close();
    expect(closed.map((c) => [c.first, c.last])).toEqual([[1, 2], [3, 3]]);
    expect((await entries(file)).map((e) => e.seq)).toEqual([4]);
    expect(await runCheck()).toMatchObject({ ok: true, count: 4 });
  });

  it('loses and duplicates no line when records arrive concurrently with rotations', async () => {
    const log = await open({ rotation: { maxBytes: 300 } }).log;
    const pending: Array<Promise<void>> = [];
    for (let i = 1; i <= 300; i++) {
      pending.push(log.record(event(i)));
      // Let the writer run now and then, so rotations happen while records keep queueing.
      if (i % 7 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(pending);
    await log.close();
    const all = await runEntries();
    expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(new Set(all.map((e) => e.resourceId)).size).toBe(300);
    expect((await listClosedSegments(file)).length).toBeGreaterThan(1);
    expect(await runCheck()).toMatchObject({ ok: true, count: 300 });
  });

  it('a restart mid-run continues the chain from the open segment, keeping its age', async () => {
    const clock = fakeClock();
    const first = await open({ rotation: { maxBytes: 800, maxAgeMs: 60_000 }, now: clock.now }).log;
    for (let i = 1; i <= 7; i++) await first.record(event(i));
    await first.close();
    expect((await listClosedSegments(file)).length).toBeGreaterThan(0);
    const { log: reopening, closed } = open({ rotation: { maxBytes: 800, maxAgeMs: 60_000 }, now: clock.now });
    const second = await reopening;
    clock.advance(60_000);
    await second.rotateIfDue();
    expect(closed, 'the reopened segment is as old as its first line').toHaveLength(1);
    for (let i = 8; i <= 12; i++) await second.record(event(i));
    await second.close();
    expect((await runEntries()).map((e) => e.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(await runCheck()).toMatchObject({ ok: true, count: 12 });
  });

  it('a crash between closing a segment and beginning the next (open file missing or empty) continues from the closed one', async () => {
    const log = await open({ rotation: { maxBytes: 1 } }).log;
    await log.record(event(1));
    await log.record(event(2));
    await log.close();
    expect(await readFile(file, 'utf8'), 'the open segment is empty after a rotation').toBe('');
    const again = await open({ rotation: { maxBytes: 1 } }).log;
    await again.record(event(3));
    await again.close();
    // A crash after the rename, before the new file was created.
    await rm(file);
    const third = await open().log;
    await third.record(event(4));
    await third.close();
    expect((await runEntries()).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(await runCheck()).toMatchObject({ ok: true, count: 4 });
  });

  it('names closed segments by seq range and hash only: no event contents (no PHI) in any file name', async () => {
    const log = await open({ rotation: { maxBytes: 1 } }).log;
    for (let i = 1; i <= 3; i++) await log.record({ ...event(i), actor: PHI, details: { note: PHI } });
    await log.close();
    const names = await readdir(dir);
    for (const name of names) expect(name).toMatch(/^app-audit(\.\d{12}-\d{12}-[0-9a-f]{12})?\.jsonl$/);
    expect(names.join(' ')).not.toContain('Jane');
    expect(names.filter((n) => parseSegmentName(n))).toHaveLength(3);
  });
});
