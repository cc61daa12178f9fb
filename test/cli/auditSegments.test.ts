import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAuditLog } from '../../services/core/audit/auditLog.ts';
import type { AuditEntry } from '../../services/core/audit/chain.ts';
import { createCheckpointer } from '../../services/core/audit/checkpointer.ts';
import { checkpointStore } from '../../services/core/audit/checkpointStore.ts';
import { listClosedSegments, type ClosedSegment } from '../../services/core/audit/segments.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../helpers/keys.ts';

const main = resolve(import.meta.dirname, '../../services/cli/main.ts');
let dir: string;
let file: string;
let keys: TestServiceKeyPair;
let segments: ClosedSegment[];
let head: AuditEntry;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [main, 'audit', 'verify', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** What an operator downloads from the archive: the objects under `<prefix>/<service>/`, named as in S3. */
async function download(to: string, which = segments): Promise<string> {
  await mkdir(to, { recursive: true });
  for (const s of which) await copyFile(s.path, join(to, basename(s.path).replace('app-audit.', '')));
  return to;
}

beforeAll(async () => {
  keys = await makeServiceKeyPair();
  dir = await mkdtemp(join(tmpdir(), 'cr-cli-segments-'));
  file = join(dir, 'app-audit.jsonl');
  const pending: Array<Promise<unknown>> = [];
  const ref: { cp?: ReturnType<typeof createCheckpointer> } = {};
  const log = await openAuditLog({ file, service: 'app', rotation: { maxBytes: 900 }, onRotation: (e) => void ('closed' in e && pending.push(ref.cp!.checkpoint('rotation'))) });
  const cp = (ref.cp = createCheckpointer({ service: 'app', audit: log, key: keys.app.own.current, store: checkpointStore(`${file}.checkpoints`), intervalMs: 60_000 }));
  for (let i = 1; i <= 13; i++) await log.record({ action: 'sms.sent', actor: 'app', resourceType: 'sms', resourceId: `s${i}`, outcome: 'success' });
  await Promise.all(pending);
  await cp.checkpoint('shutdown');
  await log.close();
  segments = await listClosedSegments(file);
  const all = [...segments.map((s) => s.path), file];
  const last = (await Promise.all(all.map(async (p) => (await readFile(p, 'utf8')).trimEnd()))).filter((t) => t !== '').at(-1)!.split('\n').at(-1)!;
  head = JSON.parse(last) as AuditEntry;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await keys?.cleanup();
});

describe('care-relay audit verify over a run of segments', () => {
  it('the trail file: its closed segments are checked first, then the open one; prints the head', () => {
    expect(segments.length).toBeGreaterThanOrEqual(3);
    const r = cli(file, '--key', keys.app.dir);
    expect(r).toMatchObject({ code: 0 });
    expect(r.stdout).toMatch(new RegExp(`^ok: 13 entries in ${segments.length} closed segments and the open one, head seq 13 hash ${head.hash}; \\d+ signed checkpoints \\(last at seq 13\\)\\n$`));
  });

  it('a folder downloaded from the archive, with the checkpoint copies', async () => {
    const folder = await download(join(dir, 'restore-ok'));
    const r = cli(folder, file, '--key', keys.app.dir, '--checkpoints', `${file}.checkpoints`);
    expect(r).toMatchObject({ code: 0, stdout: expect.stringContaining('head seq 13') });
    // Without the open segment the run ends at the last closed one, short of the last checkpoint.
    const closedOnly = cli(folder, '--chain-only');
    expect(closedOnly).toMatchObject({ code: 0, stdout: expect.stringContaining(`head seq ${segments.at(-1)!.last}`) });
  });

  it('a segment missing in the middle of the download', async () => {
    const folder = await download(join(dir, 'restore-gap'), segments.filter((_, i) => i !== 1));
    const r = cli(folder, file, '--key', keys.app.dir, '--checkpoints', `${file}.checkpoints`);
    expect(r).toMatchObject({ code: 1, stdout: expect.stringContaining(`begins at seq ${segments[2]!.first}, expected ${segments[1]!.first}: a segment is missing before it`) });
  });

  it('a segment cut at its end is named', async () => {
    const folder = await download(join(dir, 'restore-cut'));
    const victim = join(folder, basename(segments[0]!.path).replace('app-audit.', ''));
    const ls = (await readFile(victim, 'utf8')).trimEnd().split('\n');
    await writeFile(victim, ls.slice(0, -1).join('\n') + '\n');
    expect(cli(folder, '--chain-only')).toMatchObject({ code: 1, stdout: expect.stringContaining('the segment was truncated or replaced') });
  });

  it('two trails mixed in one folder', async () => {
    const folder = await download(join(dir, 'restore-mixed'));
    await copyFile(segments[0]!.path, join(folder, `${basename(segments[0]!.path).replace('app-audit.', '').slice(0, 26)}ffffffffffff.jsonl`));
    expect(cli(folder, '--chain-only')).toMatchObject({ code: 1, stdout: expect.stringContaining(`two segments begin at seq 1`) });
  });

  it('a folder with no segments, and no default checkpoint file without a trail file', async () => {
    await mkdir(join(dir, 'empty'));
    expect(cli(join(dir, 'empty'), '--chain-only')).toMatchObject({ code: 1, stdout: expect.stringContaining('no audit segment files') });
    const folder = await download(join(dir, 'restore-nocp'));
    expect(cli(folder, '--key', keys.app.dir)).toMatchObject({ code: 1, stdout: expect.stringContaining('give --checkpoints FILE') });
  });
});
