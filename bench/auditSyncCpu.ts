// CPU per audit-trail batch on this machine's disk, one batch at a time (what a lone submission's
// records cost): `node bench/auditSyncCpu.ts [rounds]`. Three ways to make a ~400-byte line
// durable, alternated in rounds: FileHandle.appendFile then fdatasync (what auditLog.ts did before),
// FileHandle.write then fdatasync, and FileHandle.write to a file opened with O_DSYNC (what it does
// now). Prints the main thread's and the whole process's CPU µs per line (libuv's pool included)
// and the wall µs. A measuring tool, not a section of `npm run bench`. The folder is the system's
// temporary one unless AUDIT_SYNC_DIR names one on the disk the trail will use.
import { constants } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

type Way = 'appendFile + fdatasync' | 'write + fdatasync' | 'write, O_DSYNC';
const WAYS: readonly Way[] = ['appendFile + fdatasync', 'write + fdatasync', 'write, O_DSYNC'];
const LINES = 2000;
const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT;
const line = `${JSON.stringify({ seq: 1, ts: new Date().toISOString(), service: 'interface', action: 'submission.accepted', actor: 'partner:bench', resourceType: 'submission', resourceId: '0'.repeat(26), outcome: 'success', details: { kind: 'fhir', bytes: 4096 }, prev: 'a'.repeat(64), hash: 'b'.repeat(64) })}\n`;

async function run(way: Way): Promise<{ main: number; process: number; wall: number }> {
  const dir = await mkdtemp(join(process.env.AUDIT_SYNC_DIR ?? tmpdir(), 'audit-sync-'));
  try {
    const fh = await open(join(dir, 'trail.jsonl'), way === 'write, O_DSYNC' ? APPEND | constants.O_DSYNC : APPEND, 0o600);
    const main0 = process.threadCpuUsage();
    const all0 = process.cpuUsage();
    const wall0 = performance.now();
    for (let i = 0; i < LINES; i++) {
      if (way === 'appendFile + fdatasync') await fh.appendFile(line, 'utf8');
      else await fh.write(Buffer.from(line, 'utf8'));
      if (way !== 'write, O_DSYNC') await fh.datasync();
    }
    const wall = performance.now() - wall0;
    const main = process.threadCpuUsage(main0);
    const all = process.cpuUsage(all0);
    await fh.close();
    return { main: (main.user + main.system) / LINES, process: (all.user + all.system) / LINES, wall: (wall * 1000) / LINES };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const rounds = Number(process.argv[2] ?? 3);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds must be a whole number ≥ 1, not ${process.argv[2]}`);
console.log(`${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; ${LINES} lines per way and round, one at a time`);
const results = new Map<Way, Array<{ main: number; process: number; wall: number }>>(WAYS.map((w) => [w, []]));
for (let r = 0; r < rounds; r++) for (const way of WAYS) results.get(way)!.push(await run(way));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [way, list] of results) {
  const f = (k: 'main' | 'process' | 'wall'): string => `${median(list.map((x) => x[k])).toFixed(0)} (${list.map((x) => x[k].toFixed(0)).join(', ')})`;
  console.log(`${way.padEnd(24)} µs per line, median (rounds): main thread ${f('main')}; process ${f('process')}; wall ${f('wall')}`);
}
