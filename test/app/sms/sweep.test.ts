import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../../../services/cli/sms.ts';
import { runSweep } from '../../../services/app/sms/sweep.ts';
import { verifyAuditFile } from '../../../services/core/audit/verify.ts';
import { fastRetry, memoryAudit, startWorld, type SmsWorld } from './helpers.ts';

let world: SmsWorld | undefined;
let dir: string | undefined;
afterEach(async () => {
  await world?.fake.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  world = undefined;
  dir = undefined;
});

const day = (d: number, h = 12) => new Date(Date.UTC(2024, 2, d, h));

function seedHistory(w: SmsWorld) {
  // 300 delivered messages over 10 days, every third with two media items; plus a few that must be skipped.
  for (let i = 0; i < 300; i++) {
    w.fake.seed({ date: day(1 + (i % 10)), body: `history ${i}`, mediaUrls: i % 3 === 0 ? [`https://m.example/${i}a.jpg`, `https://m.example/${i}b.jpg`] : [] });
  }
  w.fake.seed({ date: day(5), status: 'sending', body: 'in flight' });
  w.fake.seed({ date: day(5), status: 'delivered', body: '' });
  w.fake.seed({ date: day(20), body: 'out of range' });
}

function io(w: SmsWorld) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out, err,
    io: {
      env: { ...w.fake.serviceEnv(), REDACTION_SENT_GRACE_SECONDS: '1' },
      stdout: (t: string) => void out.push(t),
      stderr: (t: string) => void err.push(t),
    },
  };
}

describe('sms sweep', () => {
  it('dry run changes nothing and counts what it would do', async () => {
    world = await startWorld();
    seedHistory(world);
    const audit = memoryAudit();
    const state = await runSweep({ api: world.api, hmacKey: 'k', audit, retry: fastRetry }, { mode: 'redact', sentGraceSeconds: 1, dryRun: true, since: day(1, 0), until: day(10, 23), pageSize: 50 });
    expect(state.counts).toEqual({ scanned: 302, redacted: 300, mediaDeleted: 200, alreadyClean: 1, skippedInProgress: 1, failed: 0 });
    expect([...world.fake.store.messages.values()].filter((m) => m.body.startsWith('history'))).toHaveLength(300);
    expect(world.fake.requests.some((r) => r.method !== 'GET')).toBe(false);
    expect(audit.events).toHaveLength(0);
  });

  it('redacts 300 messages with media page by page through the CLI, resuming from the state file', async () => {
    world = await startWorld();
    seedHistory(world);
    dir = await mkdtemp(join(tmpdir(), 'sweep-'));
    const stateFile = join(dir, 'state.json');
    const auditFile = join(dir, 'sweep-audit.jsonl');
    const args = ['sweep', '--since', '2024-03-01', '--until', '2024-03-10', '--state', stateFile, '--page-size', '40', '--audit', auditFile];
    // Interrupt: the 4th page fetch fails for longer than the retries last.
    const first = io(world);
    let pageGets = 0;
    const origTake = world.fake.faults.take.bind(world.fake.faults);
    world.fake.faults.take = (method, path) => {
      if (method === 'GET' && /Messages\.json$/.test(path) && ++pageGets >= 4) return { count: 1, status: 503 };
      return origTake(method, path);
    };
    await expect(run(args, first.io)).rejects.toThrow(/503/);
    const saved = JSON.parse(await readFile(stateFile, 'utf8')) as { pages: number; nextPageUrl: string; counts: { scanned: number } };
    expect(saved.pages).toBe(3);
    expect(saved.counts.scanned).toBe(120);
    expect(saved.nextPageUrl).toContain('PageToken=');
    expect(first.err.join('')).toContain('page 3: scanned 120');
    world.fake.faults.take = origTake;
    // As if the first run had been killed in the middle of an audit write: its trail ends in half a line.
    const torn = '{"seq":999,"ts":"2024-03-1';
    await appendFile(auditFile, torn);
    const requestsBefore = world.fake.requests.length;
    const second = io(world);
    expect(await run(args, second.io)).toBe(0);
    expect(second.err.join('')).toContain('resuming after 3 page(s), 120 message(s) scanned');
    expect(second.err.join('')).toMatch(/sweep-audit\.jsonl ended in an incomplete line \(a write cut short\): 26 byte\(s\) moved to .*sweep-audit\.jsonl\.torn-[0-9a-f]{16}, recorded as audit\.torn_tail\n/);
    const summary = second.out.join('');
    expect(summary).toMatch(/scanned:\s+302/);
    expect(summary).toMatch(/redacted:\s+300/);
    expect(summary).toMatch(/media deleted:\s+200/);
    expect(summary).toMatch(/skipped in progress:\s+1/);
    expect(summary).toMatch(/failed:\s+0/);
    // Resumed from page 4: the first three pages were not listed again.
    const listed = world.fake.requests.slice(requestsBefore).filter((r) => r.method === 'GET' && r.path.endsWith('/Messages.json'));
    expect(listed[0]!.query.PageToken).toBeDefined();
    const history = [...world.fake.store.messages.values()].filter((m) => m.dateCreated <= day(10, 23));
    expect(history.filter((m) => m.status === 'delivered' && m.body !== '')).toHaveLength(0);
    expect(history.reduce((n, m) => n + world!.fake.mediaOf(m.sid).length, 0)).toBe(0);
    expect(world.fake.store.list({}).find((m) => m.body === 'out of range')).toBeDefined();
    // Every redaction of both runs, and a summary of each, is in the audit file; no sid in clear.
    const lines = (await readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { action: string; outcome: string; actor: string; resourceId?: string; details?: Record<string, unknown> });
    expect(lines.filter((l) => l.action === 'sms.redacted')).toHaveLength(300);
    expect(lines.every((l) => l.actor === 'cli:sms-sweep')).toBe(true);
    const tornLines = lines.filter((l) => l.action === 'audit.torn_tail');
    expect(tornLines).toEqual([expect.objectContaining({ resourceId: expect.stringMatching(/^sweep-audit\.jsonl\.torn-[0-9a-f]{16}$/), details: expect.objectContaining({ of: 'trail', bytes: 26 }) })]);
    expect(await readFile(String(tornLines[0]!.details!.savedAs), 'utf8')).toBe(torn);
    expect(await verifyAuditFile(auditFile)).toMatchObject({ ok: true });
    const summaries = lines.filter((l) => l.action === 'sms.sweep');
    expect(summaries.map((l) => [l.outcome, l.details?.done])).toEqual([['failure', false], ['success', true]]);
    expect(summaries[1]!.details).toMatchObject({ scanned: 302, redacted: 300, mediaDeleted: 200, failed: 0, mode: 'redact', dryRun: false });
    const sids = [...world.fake.store.messages.keys()];
    const text = await readFile(auditFile, 'utf8');
    expect(sids.some((sid) => text.includes(sid))).toBe(false);
    // A finished state file makes a re-run a no-op.
    const third = io(world);
    expect(await run(args, third.io)).toBe(0);
    expect(third.err.join('')).toContain('already finished');
  });

  it('on a terminal, shows one progress bar redrawn in place instead of a line per page; plain lines otherwise', async () => {
    world = await startWorld();
    seedHistory(world);
    dir = await mkdtemp(join(tmpdir(), 'sweep-'));
    const args = ['sweep', '--dry-run', '--since', '2024-03-01', '--until', '2024-03-10', '--page-size', '50', '--audit', join(dir, 'a.jsonl')];
    const tty = io(world);
    expect(await run(args, { ...tty.io, stderrIsTTY: true })).toBe(0);
    const drawn = tty.err.join('');
    expect(drawn).toContain('\r\x1b[2K[');
    expect(drawn).toContain('sms sweep (dry run): 302');
    // The bar ends with one newline; no page gets a line of its own.
    expect(drawn.split('\n').filter((l) => l.includes('page ')).length).toBe(1);
    const plain = io(world);
    expect(await run(args, plain.io)).toBe(0);
    const lines = plain.err.join('').split('\n').filter((l) => /^page \d+:/.test(l));
    expect(lines.length).toBe(7);
    expect(plain.err.join('')).not.toContain('\x1b[');
  });

  it('refuses a state file saved for other options, and bad arguments', async () => {
    world = await startWorld();
    const a = io(world);
    expect(await run(['sweep', '--mode', 'shred'], a.io)).toBe(2);
    expect(a.err.join('')).toContain('--mode');
    expect(await run(['sweep', '--since', 'yesterday'], a.io)).toBe(2);
    expect(await run(['sweep'], { ...a.io, env: {} })).toBe(2);
    expect(a.err.join('')).toContain('SIGNALWIRE_PROJECT_ID');
    // A sweep that changes messages must be audited: without --audit (or AUDIT_FILE) it does not start.
    const b = io(world);
    expect(await run(['sweep'], b.io)).toBe(2);
    expect(b.err.join('')).toMatch(/--audit FILE is required/);
    expect(world.fake.requests).toHaveLength(0);
  });
});
