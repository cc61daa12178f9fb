import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../services/cli/io.ts';
import { LEGACY_GROUPS } from '../../services/cli/program.ts';
import { runCli } from '../../services/cli/runner.ts';

const main = resolve(import.meta.dirname, '../../services/cli/main.ts');
const SLOW = 120_000;

/** An io that records what a run wrote; env as given. */
function memoryIo(env: Record<string, string> = {}): CliIo & { out: string; err: string } {
  const io = {
    env,
    out: '',
    err: '',
    stdout: (t: string) => void (io.out += t),
    stderr: (t: string) => void (io.err += t),
    stderrIsTTY: false,
    stdinIsTTY: false,
    columns: 80,
    ask: async () => 'no',
  };
  return io;
}

/** Every command and subcommand of care-relay. */
const COMMANDS: string[][] = [
  ...Object.entries(LEGACY_GROUPS).flatMap(([group, g]) => [[group], ...Object.keys(g.subs ?? {}).map((sub) => [group, sub])]),
  ['status'],
  ...['dlq', 'quarantine'].flatMap((g) => [[g], ...['list', 'show', 'redrive', 'purge'].map((s) => [g, s])]),
];

describe('one runner for every command', () => {
  it('covers every group and subcommand', () => {
    expect(COMMANDS.length).toBeGreaterThan(25);
    expect(COMMANDS).toContainEqual(['audit', 'verify']);
    expect(COMMANDS).toContainEqual(['dev']);
  });

  it('--help and -h print the usage and exit 0 on every command, without running it (audit verify --help opened a file named --help)', async () => {
    for (const cmd of COMMANDS) {
      for (const flag of ['--help', '-h']) {
        const io = memoryIo();
        const code = await runCli([...cmd, flag], io);
        expect(code, `${cmd.join(' ')} ${flag}: ${io.err}`).toBe(0);
        expect(io.out, cmd.join(' ')).toMatch(new RegExp(`^usage: care-relay ${cmd[0]}`));
        expect(io.err, cmd.join(' ')).toBe('');
      }
    }
    // With arguments around it too: help wins and nothing runs.
    const io = memoryIo();
    expect(await runCli(['audit', 'verify', '--help', '--chain-only'], io)).toBe(0);
    expect(io.out).toMatch(/^usage: care-relay audit verify TRAIL\.\.\./);
    expect(io.err).toBe('');
  });

  it('an unknown option is a usage error (exit 2) on every command, before anything runs', async () => {
    for (const cmd of COMMANDS) {
      const io = memoryIo();
      const code = await runCli([...cmd, '--no-such-option'], io);
      expect(code, cmd.join(' ')).toBe(2);
      expect(io.err, cmd.join(' ')).toContain("unknown option '--no-such-option'");
      expect(io.err, cmd.join(' ')).toContain('usage: care-relay');
      expect(io.out, cmd.join(' ')).toBe('');
    }
  });

  it('unknown commands, missing subcommands, missing and extra arguments exit 2', async () => {
    const cases: [string[], string][] = [
      [['nope'], "unknown command 'nope'"],
      [['keys', 'nope'], "unknown command 'nope'"],
      [['audit', 'verify'], "missing required argument 'trail'"],
      [['hl7', 'send', 'a.hl7', 'b.hl7'], 'too many arguments'],
      [['dlq', 'show', 'interface-to-app'], "missing required argument 'id'"],
      [['dlq', 'list', 'interface-to-app', '--limit', '0'], 'expected an integer from 1 to 10000'],
      [['status', '--service', 'billing'], 'Allowed choices are interface, app'],
    ];
    for (const [argv, message] of cases) {
      const io = memoryIo();
      expect(await runCli(argv, io), argv.join(' ')).toBe(2);
      expect(io.err, argv.join(' ')).toContain(message);
    }
    for (const group of ['keys', 'queues', 'dlq', 'quarantine']) {
      const io = memoryIo();
      expect(await runCli([group], io), group).toBe(2);
      expect(io.err).toMatch(new RegExp(`^usage: care-relay ${group}`));
    }
    const bare = memoryIo();
    expect(await runCli([], bare)).toBe(2);
  });

  it('a QUEUE that is not a logical queue is a usage error, in JSON with --json', async () => {
    const io = memoryIo();
    expect(await runCli(['dlq', 'list', 'billing', '--json'], io)).toBe(2);
    const parsed = JSON.parse(io.err) as { error: { code: string; message: string } };
    expect(parsed.error.code).toBe('CR_CLI_USAGE');
    expect(parsed.error.message).toContain('expected one of interface-to-app, app-to-interface, app-sms-redaction');
    // In text, the message and then the command's usage, as commander's own usage errors.
    const text = memoryIo();
    expect(await runCli(['dlq', 'list', 'billing'], text)).toBe(2);
    expect(text.err).toMatch(/^care-relay: CR_CLI_USAGE QUEUE: expected one of .*\n\nusage: care-relay dlq list QUEUE/);
  });

  it('a failure prints one line with its code and exits 1 (and one JSON object with --json)', async () => {
    // Nothing listens on port 9: SQS cannot be reached.
    const env = { SQS_ENDPOINT: 'http://127.0.0.1:9', DYNAMODB_ENDPOINT: 'http://127.0.0.1:9', AWS_REGION: 'us-east-1' };
    const io = memoryIo(env);
    expect(await runCli(['dlq', 'list', 'interface-to-app'], io)).toBe(1);
    expect(io.err).toMatch(/^care-relay: CR_TRANSPORT_QUEUE_MISSING queue "interface-to-app(-dlq|-quarantine)?" cannot be looked up \(\w+\)\n$/);
    expect(io.out).toBe('');
    const json = memoryIo(env);
    expect(await runCli(['quarantine', 'list', 'interface-to-app', '--json'], json)).toBe(1);
    expect(JSON.parse(json.err)).toMatchObject({ error: { code: 'CR_TRANSPORT_QUEUE_MISSING' } });
    const badEnv = memoryIo({ QUEUE_FIFO: 'maybe' });
    expect(await runCli(['status'], badEnv)).toBe(1);
    expect(badEnv.err).toMatch(/^care-relay: CR_CONFIG_INVALID QUEUE_FIFO: /);
  });
});

describe('the real process', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'cr-runner-'));
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));
  const run = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { cwd, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 });

  it('help of commands with side effects runs none of them; exit codes reach the shell', () => {
    for (const args of [['keys', 'init', '--help'], ['deploy', 'prepare', '--help'], ['audit', 'verify', '--help'], ['dev', '--help'], ['sms', 'sweep', '--help']]) {
      const r = run(...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/^usage: care-relay /);
    }
    // keys init and deploy prepare would have written here; dev would have started a stack.
    expect(readdirSync(cwd)).toEqual([]);
    expect(run('audit', 'verify', '--bogus').status).toBe(2);
    const failed = run('audit', 'verify', 'missing.jsonl', '--chain-only');
    expect(failed.status).toBe(1);
    expect(failed.stderr.trim().split('\n')).toHaveLength(1);
  }, SLOW);
});
