import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../../services/core/http/auth.ts';
import type { TestStack } from '../../helpers/stack.ts';
import { waitFor } from '../../helpers/wait.ts';
import { auditFiles, bearer, expectProblem, readAudit, startSecurityStack, submit } from '../../security/helpers.ts';

const FHIR = JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'partner test' } });
const HL7 = 'MSH|^~\\&|LAB|CARE|EMR|HOSP|202601011200||ORU^R01|9|P|2.5\r';

let stack: TestStack;
const token = (): string => randomBytes(18).toString('base64url');
const t = { cidr: token(), slow: token(), hl7: token(), xml: token(), rotating: token(), rotated: token() };
const partnersFile = (): string => join(stack.dir, 'partners.json');

function partners(rotatingToken: string): string {
  return JSON.stringify({
    tokens: [
      { name: 'acme-health', sha256: hashToken(stack.tokens.partner), rateLimitPerMinute: 100_000 },
      { name: 'cidr-clinic', sha256: hashToken(t.cidr), allowCidrs: ['203.0.113.0/24', '2001:db8::/32'] },
      { name: 'slow-lab', sha256: hashToken(t.slow), rateLimitPerMinute: 3 },
      { name: 'hl7-only', sha256: hashToken(t.hl7), contentTypes: ['application/hl7-v2'] },
      { name: 'xml-alias', sha256: hashToken(t.xml), contentTypes: ['text/xml'] },
      { name: 'rotating', sha256: hashToken(rotatingToken) },
    ],
  });
}

beforeAll(async () => {
  stack = await startSecurityStack();
  await writeFile(partnersFile(), partners(t.rotating));
  stack.iface.reload();
});
afterAll(async () => {
  await stack?.stop();
});

/** Acknowledges whatever the accepted submissions put in the inbox, so nothing is held at stop. */
async function drain(ids: string[]): Promise<void> {
  for (const id of ids) {
    await waitFor(() => stack.app.inbox.get(id), { what: `record ${id}` });
    stack.app.inbox.ack(id);
  }
}

describe('partner controls on the interface', () => {
  it('stores only token hashes: the partners file holds no token', async () => {
    const text = await readFile(partnersFile(), 'utf8');
    for (const value of [stack.tokens.partner, ...Object.values(t)]) expect(text).not.toContain(value);
  });

  it('CIDR allow-list: addresses inside the blocks (IPv4, IPv4-mapped, IPv6) submit; others get 403 and an audit line', async () => {
    const ids: string[] = [];
    for (const ip of ['203.0.113.7', '::ffff:203.0.113.200', '2001:db8::42']) {
      const res = await submit(stack, FHIR, bearer(t.cidr), ip);
      expect(res.statusCode, `${ip}: ${res.body}`).toBe(202);
      ids.push(res.json<{ id: string }>().id);
    }
    for (const ip of ['203.0.114.7', '198.51.100.1', '2001:db9::1', '127.0.0.1']) {
      expectProblem(await submit(stack, FHIR, bearer(t.cidr), ip), 403, 'CR_AUTH_FORBIDDEN');
    }
    // A partner without a list may submit from anywhere.
    const open = await submit(stack, FHIR, {}, '198.51.100.1');
    expect(open.statusCode).toBe(202);
    ids.push(open.json<{ id: string }>().id);
    const lines = await readAudit(auditFiles(stack).iface);
    expect(lines.find((l) => l.action === 'auth.forbidden' && l.sourceIp === '203.0.114.7')).toMatchObject({
      actor: 'cidr-clinic',
      outcome: 'failure',
      details: { reason: 'address-not-allowed' },
    });
    await drain(ids);
  });

  it('rate limit per partner: 429 problem+json with Retry-After once over the limit; another partner is unaffected', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await submit(stack, FHIR, bearer(t.slow));
      expect(res.statusCode).toBe(202);
      ids.push(res.json<{ id: string }>().id);
    }
    const limited = await submit(stack, FHIR, bearer(t.slow));
    expectProblem(limited, 429, 'CR_HTTP_RATE_LIMITED');
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // The limit is per partner, not per address: same address, another partner.
    const other = await submit(stack, FHIR);
    expect(other.statusCode).toBe(202);
    ids.push(other.json<{ id: string }>().id);
    expectProblem(await submit(stack, FHIR, bearer(t.slow)), 429, 'CR_HTTP_RATE_LIMITED');
    await drain(ids);
  });

  it('allowed content types per partner: anything else is 415 problem+json', async () => {
    const ok = await submit(stack, HL7, { ...bearer(t.hl7), 'content-type': 'application/hl7-v2' });
    expect(ok.statusCode).toBe(202);
    const refused = expectProblem(await submit(stack, FHIR, bearer(t.hl7)), 415, 'CR_HTTP_UNSUPPORTED_MEDIA_TYPE');
    expect(refused.detail).toContain('application/hl7-v2');
    expectProblem(await submit(stack, '<ClinicalDocument/>', { ...bearer(t.hl7), 'content-type': 'application/xml' }), 415, 'CR_HTTP_UNSUPPORTED_MEDIA_TYPE');
    // A type no partner may send is refused before the body is read.
    expectProblem(await submit(stack, 'hello', { ...bearer(t.hl7), 'content-type': 'text/plain' }), 415, 'CR_HTTP_UNSUPPORTED_MEDIA_TYPE');
    await drain([ok.json<{ id: string }>().id]);
  });

  it('a content-type alias in the partners file (text/xml) admits the alias and its canonical type, relayed as application/xml', async () => {
    const ids: string[] = [];
    for (const type of ['text/xml', 'application/xml']) {
      const res = await submit(stack, '<ClinicalDocument/>', { ...bearer(t.xml), 'content-type': type });
      expect(res.statusCode, `${type}: ${res.body}`).toBe(202);
      ids.push(res.json<{ id: string }>().id);
    }
    expectProblem(await submit(stack, FHIR, bearer(t.xml)), 415, 'CR_HTTP_UNSUPPORTED_MEDIA_TYPE');
    for (const id of ids) expect((await waitFor(() => stack.app.inbox.get(id), { what: `record ${id}` })).contentType).toBe('application/xml');
    await drain(ids);
  });

  it('rotates a token without a restart: new hash in the file + reload (SIGHUP) → new token works, old one refused', async () => {
    const before = await submit(stack, FHIR, bearer(t.rotating));
    expect(before.statusCode).toBe(202);
    await writeFile(partnersFile(), partners(t.rotated));
    stack.iface.reload();
    expectProblem(await submit(stack, FHIR, bearer(t.rotating)), 401, 'CR_AUTH_INVALID');
    const after = await submit(stack, FHIR, bearer(t.rotated));
    expect(after.statusCode).toBe(202);
    const lines = await readAudit(auditFiles(stack).iface);
    expect(lines.some((l) => l.action === 'config.reloaded' && l.resourceType === 'tokens')).toBe(true);

    // A broken file on reload is refused and the tokens in force stay.
    await writeFile(partnersFile(), '{"tokens": [ { "name": "x" ');
    expect(() => stack.iface.reload()).toThrow(expect.objectContaining({ code: 'CR_AUTH_TOKENS_FILE_INVALID' }));
    const still = await submit(stack, FHIR, bearer(t.rotated));
    expect(still.statusCode).toBe(202);
    await writeFile(partnersFile(), partners(t.rotated));
    stack.iface.reload();
    await drain([before, after, still].map((r) => r.json<{ id: string }>().id));
  });
});

describe('SIGHUP on a running interface process', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('reloads the partners file on SIGHUP: the rotated token works, the old one is refused; with a broken admin file nothing is applied and the failure is audited', { timeout: 90_000 }, async () => {
    const file = join(stack.dir, 'partners-process.json');
    const oldToken = token();
    const newToken = token();
    const write = (tok: string) => writeFile(file, JSON.stringify({ tokens: [{ name: 'proc-partner', sha256: hashToken(tok) }] }));
    await write(oldToken);
    await writeFile(join(stack.dir, 'admins-process.json'), JSON.stringify({ tokens: [{ name: 'admin', sha256: hashToken(stack.tokens.admin), roles: ['admin'] }] }));
    const env = {
      ...process.env,
      ...stack.env.iface,
      PARTNERS_FILE: file,
      ADMIN_TOKENS_FILE: join(stack.dir, 'admins-process.json'),
      AUDIT_FILE: join(stack.dir, 'interface-process-audit.jsonl'),
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
    };
    child = spawn(process.execPath, [resolve(import.meta.dirname, '../../../services/interface/main.ts')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const url = await waitFor(() => /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1], { what: `interface process to listen (output: ${out.slice(0, 500)})`, timeoutMs: 60_000 });
    // An authenticated partner gets past auth to payload validation (400); an unknown token stops at 401.
    const status = async (tok: string) =>
      (await fetch(`${url}/v1/submissions`, { method: 'POST', headers: { ...bearer(tok), 'content-type': 'application/fhir+json' }, body: '{}' })).status;
    expect(await status(oldToken)).toBe(400);
    expect(await status(newToken)).toBe(401);
    await write(newToken);
    child.kill('SIGHUP');
    await waitFor(async () => (await status(newToken)) === 400, { what: 'rotated token accepted after SIGHUP' });
    expect(await status(oldToken)).toBe(401);
    expect(out).toContain('tokens reloaded');

    // A valid partners file with a broken admin file: nothing is applied, and the failure is audited.
    const adminFile = join(stack.dir, 'admins-process.json');
    const newerToken = token();
    await write(newerToken);
    await writeFile(adminFile, '{"tokens": [ {"name": "admin", ');
    child.kill('SIGHUP');
    const audit = join(stack.dir, 'interface-process-audit.jsonl');
    const failed = await waitFor(async () => (await readAudit(audit)).find((l) => l.action === 'config.reload_failed'), { what: 'config.reload_failed in the audit trail' });
    expect(failed).toMatchObject({ actor: 'interface', outcome: 'failure', resourceId: 'admins-process.json', details: { files: 'partners-process.json,admins-process.json', reason: 'CR_AUTH_TOKENS_FILE_INVALID' } });
    expect(await status(newToken)).toBe(400);
    expect(await status(newerToken)).toBe(401);
    expect(out).toContain('config reload failed; nothing changed');

    // Both files valid: both applied, audited with the file names only.
    await writeFile(adminFile, JSON.stringify({ tokens: [{ name: 'admin', sha256: hashToken(stack.tokens.admin), roles: ['admin'] }] }));
    child.kill('SIGHUP');
    await waitFor(async () => (await status(newerToken)) === 400, { what: 'both files applied after the admin file was fixed' });
    expect(await status(newToken)).toBe(401);
    const reloaded = await waitFor(async () => (await readAudit(audit)).filter((l) => l.action === 'config.reloaded').at(-1), { what: 'config.reloaded' });
    expect(reloaded).toMatchObject({ outcome: 'success', details: { files: 'partners-process.json,admins-process.json' } });
    const trail = await readFile(audit, 'utf8');
    for (const secret of [oldToken, newToken, newerToken, stack.tokens.admin]) expect(trail).not.toContain(secret);
    const exited = new Promise<number | null>((done) => child!.once('exit', (code) => done(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
