import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../services/core/http/auth.ts';
import { createHttpServer } from '../../services/core/http/server.ts';
import { silentLogger } from '../../services/core/log/logger.ts';
import { loadInterfaceConfig } from '../../services/interface/config.ts';
import type { TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';
import { auditFiles, readAudit, startSecurityStack } from './helpers.ts';

const FHIR = JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'proxy test' } });

/** One request over a real socket from 127.0.0.1, with the headers exactly as given. */
function call(port: number, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: body === undefined ? 'GET' : 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('TRUST_PROXY configuration', () => {
  const base = { KEYS_DIR: 'k', KEY_PASSPHRASE: 'p', AUDIT_FILE: 'a', HMAC_KEY: 'h'.repeat(32), PARTNERS_FILE: 'p.json', EMR_URL: 'http://127.0.0.1:1/' };

  it('refuses TRUST_PROXY=true (trust every hop) with an error naming the variable and the new form', () => {
    for (const value of ['true', '1', 'yes']) {
      expect(() => loadInterfaceConfig({ ...base, TRUST_PROXY: value })).toThrow(/^TRUST_PROXY: .*every hop.*TRUST_PROXY=10\.0\.0\.0\/8,127\.0\.0\.1/);
    }
  });

  it('takes addresses and CIDR blocks, defaults to none, and names a bad entry', () => {
    expect(loadInterfaceConfig(base).TRUST_PROXY).toEqual([]);
    expect(loadInterfaceConfig({ ...base, TRUST_PROXY: 'false' }).TRUST_PROXY).toEqual([]);
    expect(loadInterfaceConfig({ ...base, TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,2001:db8::/32' }).TRUST_PROXY).toEqual(['10.0.0.0/8', '127.0.0.1', '2001:db8::/32']);
    for (const bad of ['10.0.0.0/33', 'proxy.example', '10.0.0.0/8,', '2', '10.0.0.1/-1']) {
      expect(() => loadInterfaceConfig({ ...base, TRUST_PROXY: bad }), bad).toThrow(/^TRUST_PROXY: expected false or a comma-separated list/);
    }
  });
});

describe('client address behind proxies, over a real socket', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function serve(trustProxy: string[]): Promise<number> {
    app = createHttpServer({ logger: silentLogger, bodyLimit: 1024, trustProxy });
    app.get('/ip', async (request) => ({ ip: request.ip }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    return (app.server.address() as AddressInfo).port;
  }
  const ipOf = async (port: number, xff: string): Promise<string> => (JSON.parse((await call(port, '/ip', { 'x-forwarded-for': xff })).body) as { ip: string }).ip;

  it('an untrusted peer cannot set its address with X-Forwarded-For', async () => {
    const port = await serve(['10.0.0.0/8']);
    expect(await ipOf(port, '203.0.113.9')).toBe('127.0.0.1');
  });

  it('behind trusted proxies the address is the right-most untrusted hop, not what the client wrote first', async () => {
    let port = await serve(['127.0.0.1']);
    // The client wrote 10.1.2.3; the proxy appended the address it saw (198.51.100.7).
    expect(await ipOf(port, '10.1.2.3, 198.51.100.7')).toBe('198.51.100.7');
    await app!.close();
    port = await serve(['127.0.0.1', '10.0.0.0/8']);
    // Two trusted proxies (10.0.0.5, then loopback): the client is the hop before them.
    expect(await ipOf(port, '10.1.2.3, 203.0.113.9, 10.0.0.5')).toBe('203.0.113.9');
  });
});

describe('partner allow-list behind a trusted proxy (TRUST_PROXY=127.0.0.1)', () => {
  let stack: TestStack;
  let port: number;
  const token = randomBytes(18).toString('base64url');

  beforeAll(async () => {
    stack = await startSecurityStack({ ifaceEnv: { TRUST_PROXY: '127.0.0.1' } });
    await writeFile(
      join(stack.dir, 'partners.json'),
      JSON.stringify({ tokens: [{ name: 'acme-health', sha256: hashToken(stack.tokens.partner) }, { name: 'ten-net', sha256: hashToken(token), allowCidrs: ['10.0.0.0/8'] }] }),
    );
    stack.iface.reload();
    await stack.iface.server.listen({ port: 0, host: '127.0.0.1' });
    port = (stack.iface.server.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const submit = (xff: string) =>
    call(port, '/v1/submissions', { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', 'x-forwarded-for': xff }, FHIR);

  it('a spoofed X-Forwarded-For (10.1.2.3) does not pass the allow-list; the audit records the real hop, never the spoofed address', async () => {
    const res = await submit('10.1.2.3, 198.51.100.7');
    expect(res.status, res.body).toBe(403);
    const lines = await readAudit(auditFiles(stack).iface);
    expect(lines.find((l) => l.action === 'auth.forbidden' && l.actor === 'ten-net')).toMatchObject({ sourceIp: '198.51.100.7', details: { reason: 'address-not-allowed' } });
    expect(lines.some((l) => l.sourceIp === '10.1.2.3')).toBe(false);
  });

  it('a client the proxy saw inside the allow-list submits, and that address is audited', async () => {
    const res = await submit('10.20.30.40');
    expect(res.status, res.body).toBe(202);
    const { id } = JSON.parse(res.body) as { id: string };
    const lines = await readAudit(auditFiles(stack).iface);
    expect(lines.find((l) => l.action === 'submission.accepted' && l.resourceId === id)).toMatchObject({ sourceIp: '10.20.30.40' });
    await waitFor(() => stack.app.inbox.get(id), { what: 'record in the inbox' });
    stack.app.inbox.ack(id);
  });
});
