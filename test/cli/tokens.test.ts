// `care-relay tokens`, run as the real CLI process: a token is printed once and only its
// sha256 is stored (0600), the files load with the services' own schemas, bad input changes
// nothing, and --hup signals the process that should reload.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTokenStore, hashToken } from '../../services/core/http/auth.ts';
import { partnerEntrySchema, type PartnerEntry } from '../../services/interface/intake/partners.ts';
import { waitFor } from '../helpers/wait.ts';

const main = resolve('services/cli/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'cr-tokens-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tokens(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, 'tokens', ...args], { encoding: 'utf8', cwd: dir });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
/** The token printed by `add`: the line after "shown only this once". */
const printedToken = (stdout: string): string => {
  const lines = stdout.split('\n');
  return lines[lines.findIndex((l) => l.includes('shown only this once')) + 1]!;
};

// Every step starts the real CLI (a Node process); on a loaded machine each can take seconds.
const SLOW = 120_000;

describe('care-relay tokens', () => {
  it('adds a partner token: printed once, only its hash stored, file 0600, loadable by the interface', () => {
    const file = join(dir, 'partners.json');
    const r = tokens('add', '--kind', 'partner', '--name', 'clinic-a', '--content-type', 'application/fhir+json', '--allow-cidr', '10.0.0.0/8', '--file', file);
    expect(r.status, r.stderr).toBe(0);
    const token = printedToken(r.stdout);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(r.stdout).toContain('SIGHUP');
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(token);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const store = createTokenStore<PartnerEntry>({ file, entrySchema: partnerEntrySchema });
    expect(store.lookup(token)).toMatchObject({ name: 'clinic-a', roles: ['partner'], contentTypes: ['application/fhir+json'], allowCidrs: ['10.0.0.0/8'] });
    expect(store.lookup('not-the-token')).toBeUndefined();
  }, SLOW);

  it('adds app tokens with roles and admin tokens; list shows names and roles, never a hash', () => {
    const app = join(dir, 'app-tokens.json');
    const reader = tokens('add', '--kind', 'app', '--name', 'ward-reader', '--role', 'reader', '--file', app);
    const both = tokens('add', '--kind', 'app', '--name', 'integration', '--role', 'reader', '--role', 'writer', '--file', app);
    expect([reader.status, both.status]).toEqual([0, 0]);
    const admin = join(dir, 'admin-tokens.json');
    expect(tokens('add', '--kind', 'admin', '--name', 'ops', '--file', admin).status).toBe(0);

    const store = createTokenStore({ file: app });
    expect(store.lookup(printedToken(both.stdout))).toMatchObject({ name: 'integration', roles: ['reader', 'writer'] });
    expect(createTokenStore({ file: admin }).byName('ops')?.roles).toEqual(['admin']);

    const list = tokens('list', '--kind', 'app', '--file', app);
    expect(list.status).toBe(0);
    expect(list.stdout.trim().split('\n')).toEqual(['ward-reader  reader', 'integration  reader,writer']);
    expect(list.stdout).not.toContain(hashToken(printedToken(reader.stdout)));
    expect(list.stdout).not.toContain(printedToken(reader.stdout));
  }, SLOW);

  it('revokes by name: the token stops working, the others stay', () => {
    const app = join(dir, 'revoke.json');
    const a = printedToken(tokens('add', '--kind', 'app', '--name', 'a', '--role', 'reader', '--file', app).stdout);
    const b = printedToken(tokens('add', '--kind', 'app', '--name', 'b', '--role', 'writer', '--file', app).stdout);
    expect(tokens('revoke', '--kind', 'app', '--name', 'a', '--file', app).status).toBe(0);
    const store = createTokenStore({ file: app });
    expect(store.lookup(a)).toBeUndefined();
    expect(store.lookup(b)?.name).toBe('b');
    const missing = tokens('revoke', '--kind', 'app', '--name', 'a', '--file', app);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no token named "a"');
  }, SLOW);

  it('refuses hostile or wrong input and leaves the file as it was', () => {
    const app = join(dir, 'hostile.json');
    tokens('add', '--kind', 'app', '--name', 'keep', '--role', 'reader', '--file', app);
    const before = readFileSync(app, 'utf8');
    const cases: string[][] = [
      ['add', '--kind', 'app', '--name', 'keep', '--role', 'reader', '--file', app], // duplicate name
      ['add', '--kind', 'app', '--name', 'x', '--role', 'root', '--file', app], // unknown role
      ['add', '--kind', 'app', '--name', 'x', '--file', app], // no role
      ['add', '--kind', 'app', '--name', 'x', '--role', 'reader', '--allow-cidr', '0.0.0.0/0', '--file', app], // partner option
      ['add', '--kind', 'superuser', '--name', 'x', '--file', app],
      ['add', '--kind', 'partner', '--name', '../../etc/passwd', '--file', join(dir, 'p2.json')], // partner ids are restricted
      ['add', '--kind', 'partner', '--name', 'p', '--allow-cidr', '10.0.0.0/99', '--file', join(dir, 'p3.json')],
      ['add', '--kind', 'app', '--name', 'x', '--role', 'reader', '--hup', '1', '--file', app],
    ];
    for (const args of cases) {
      const r = tokens(...args);
      expect(r.status, args.join(' ')).not.toBe(0);
      expect(r.stdout, args.join(' ')).not.toContain('shown only this once');
    }
    expect(readFileSync(app, 'utf8')).toBe(before);
    for (const f of ['p2.json', 'p3.json']) expect(() => statSync(join(dir, f))).toThrow();
    // A file that does not load is never overwritten.
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"tokens": [ {"name": "x"} ]}', { mode: 0o600 });
    expect(tokens('add', '--kind', 'admin', '--name', 'y', '--file', broken).status).toBe(1);
    expect(readFileSync(broken, 'utf8')).toBe('{"tokens": [ {"name": "x"} ]}');
  }, SLOW);

  it('--hup sends SIGHUP to the given process', async () => {
    // A stand-in service: prints when it gets SIGHUP.
    const child = spawn(process.execPath, ['-e', "process.on('SIGHUP', () => { console.log('reloaded'); process.exit(0); }); console.log('up'); setInterval(() => {}, 1000);"], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    try {
      await waitFor(() => output.includes('up'), { what: 'stand-in started' });
      const r = tokens('add', '--kind', 'admin', '--name', 'hup', '--file', join(dir, 'hup.json'), '--hup', String(child.pid));
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(`Sent SIGHUP to process ${child.pid}`);
      await waitFor(() => output.includes('reloaded'), { what: 'SIGHUP received' });
    } finally {
      child.kill('SIGKILL');
    }
  }, SLOW);
});
