import { constants } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, rm, stat, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { memoryAudit, openAuditLog } from '../../../services/core/audit/auditLog.ts';
import { GENESIS_HASH, entryHash, type AuditEntry } from '../../../services/core/audit/chain.ts';
import { verifyAuditFile } from '../../../services/core/audit/verify.ts';
import type { AuditEvent } from '../../../services/core/audit/types.ts';
import { spyOnFileHandleWrites } from '../../helpers/fileWrites.ts';

const event = (n: number): AuditEvent => ({
  action: 'submission.accepted',
  actor: 'partner-a',
  resourceType: 'envelope',
  resourceId: `env-${n}`,
  outcome: 'success',
  sourceIp: '10.0.0.1',
  details: { n, queue: 'interface-to-app', ok: true },
});

async function lines(file: string): Promise<AuditEntry[]> {
  const text = await readFile(file, 'utf8');
  return text.trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEntry);
}

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-audit-'));
  file = join(dir, 'audit.jsonl');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('openAuditLog', () => {
  it('writes chained JSON lines with the documented fields, file mode 0600', async () => {
    const log = await openAuditLog({ file, service: 'interface', now: () => new Date('2026-01-02T03:04:05.000Z') });
    await log.record(event(1));
    await log.record({ action: 'auth.failure', actor: 'anonymous', resourceType: 'route', outcome: 'failure' });
    await log.close();

    const [a, b] = await lines(file);
    expect(a).toEqual({
      seq: 1,
      ts: '2026-01-02T03:04:05.000Z',
      service: 'interface',
      ...event(1),
      prev: GENESIS_HASH,
      hash: a!.hash,
    });
    expect(a!.hash).toBe(entryHash(a!));
    expect(b).toMatchObject({ seq: 2, prev: a!.hash, action: 'auth.failure' });
    expect(b).not.toHaveProperty('resourceId');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await verifyAuditFile(file)).toEqual({ ok: true, count: 2 });
  });

  it('continues the chain across a reopen', async () => {
    const first = await openAuditLog({ file, service: 'app' });
    await first.record(event(1));
    await first.record(event(2));
    await first.close();
    const second = await openAuditLog({ file, service: 'app' });
    await second.record(event(3));
    await second.close();

    const all = await lines(file);
    expect(all.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(all[2]!.prev).toBe(all[1]!.hash);
    expect(await verifyAuditFile(file)).toEqual({ ok: true, count: 3 });
  });

  it('serializes concurrent records in call order, each resolved after its line is written', async () => {
    const log = await openAuditLog({ file, service: 'app' });
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.record(event(i + 1))));
    const all = await lines(file);
    expect(all.map((e) => e.details?.n)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    await log.close();
    expect(await verifyAuditFile(file)).toEqual({ ok: true, count: 50 });
  });

  // Node runs each callback's promise jobs before the next callback of the same turn: a writer that waited only
  // for those would start a write after the first callback and leave the others' lines for a second one.
  it('writes the lines recorded by every callback of one event-loop turn in one write', async () => {
    const log = await openAuditLog({ file, service: 'interface' });
    const writes = await spyOnFileHandleWrites(dir);
    try {
      // Three immediates queued together run in one turn (one check phase), each callback followed by its promise
      // jobs. (Three zero-delay timers did not always: on a loaded machine the clock can pass a millisecond between
      // setting them, and the last one then falls due a turn later.)
      const recorded = await new Promise<Array<Promise<void>>>((resolve) => {
        const pending: Array<Promise<void>> = [];
        for (let i = 1; i <= 3; i++) {
          setImmediate(() => {
            pending.push(log.record(event(i)));
            if (pending.length === 3) resolve(pending);
          });
        }
      });
      await Promise.all(recorded);
      expect(writes).toHaveBeenCalledTimes(1);
      // A record of a later turn is a write of its own, after the first one's.
      await log.record(event(4));
      expect(writes).toHaveBeenCalledTimes(2);
    } finally {
      writes.mockRestore();
    }
    expect((await lines(file)).map((e) => e.details?.n)).toEqual([1, 2, 3, 4]);
    await log.close();
    expect(await verifyAuditFile(file)).toEqual({ ok: true, count: 4 });
  });

  // A record resolves once its line is on disk: the trail's descriptor is opened with O_DSYNC (each
  // write returns after its data is synced), the open segment's and, after a rotation, the new one's.
  it.runIf(process.platform === 'linux')('writes every segment through a descriptor opened with O_DSYNC (Linux: read from /proc/self/fdinfo)', async () => {
    const dsyncFlags = async (path: string): Promise<number[]> => {
      const found: number[] = [];
      for (const fd of await readdir('/proc/self/fd')) {
        const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
        if (target !== path) continue;
        const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8').catch(() => '');
        const flags = /^flags:\s+([0-7]+)$/m.exec(info);
        if (flags) found.push(Number.parseInt(flags[1]!, 8));
      }
      return found;
    };
    // The record resolves once its line is on disk; the rotation it made due follows: wait for it, not for time.
    let rotated!: () => void;
    const rotation = new Promise<void>((resolve) => (rotated = resolve));
    const log = await openAuditLog({ file, service: 'app', rotation: { maxBytes: 1 }, onRotation: () => rotated() });
    const before = await dsyncFlags(file);
    expect(before).toHaveLength(1);
    expect(before[0]! & constants.O_DSYNC).toBe(constants.O_DSYNC);
    await log.record(event(1));
    await rotation;
    // The first line made the segment due: it was closed, and the new one is open for the next line.
    const after = await dsyncFlags(file);
    expect(after).toHaveLength(1);
    expect(after[0]! & constants.O_DSYNC).toBe(constants.O_DSYNC);
    await log.record(event(2));
    await log.close();
    expect((await readdir(dir)).filter((name) => name !== 'audit.jsonl')).toHaveLength(2);
  });

  it('refuses to continue a file whose last line was edited', async () => {
    const log = await openAuditLog({ file, service: 'app' });
    await log.record(event(1));
    await log.close();
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('env-1', 'env-X'));
    await expect(openAuditLog({ file, service: 'app' })).rejects.toMatchObject({
      code: 'CR_AUDIT_TAIL_BROKEN',
      message: expect.stringContaining('hash mismatch'),
    });
  });

  it('refuses to continue a file whose last line is incomplete', async () => {
    const log = await openAuditLog({ file, service: 'app' });
    await log.record(event(1));
    await log.close();
    await appendFile(file, '{"seq":2,');
    await expect(openAuditLog({ file, service: 'app' })).rejects.toMatchObject({
      code: 'CR_AUDIT_TAIL_BROKEN',
      message: expect.stringContaining('no trailing newline'),
    });
  });

  it('reads back a last line longer than one read chunk', async () => {
    const log = await openAuditLog({ file, service: 'app' });
    await log.record(event(1));
    await log.record({ ...event(2), details: { note: 'x'.repeat(200_000) } });
    await log.close();
    const again = await openAuditLog({ file, service: 'app' });
    await again.record(event(3));
    await again.close();
    expect(await verifyAuditFile(file)).toEqual({ ok: true, count: 3 });
  });

  it('rejects records after close', async () => {
    const log = await openAuditLog({ file, service: 'app' });
    await log.close();
    await expect(log.record(event(1))).rejects.toMatchObject({ code: 'CR_AUDIT_CLOSED' });
  });
});

describe('memoryAudit', () => {
  it('collects copies of events in order', async () => {
    const sink = memoryAudit();
    const e = event(1);
    await sink.record(e);
    e.actor = 'changed';
    expect(sink.events).toEqual([event(1)]);
  });
});
