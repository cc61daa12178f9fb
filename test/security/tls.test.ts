import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInterfaceConfig } from '../../services/interface/config.ts';
import { startInterfaceService, type InterfaceService } from '../../services/interface/service.ts';
import { captureLogger } from '../helpers/logs.ts';
import type { TestStack } from '../helpers/stack.ts';
import { httpsCall as httpsCallTo, makeSelfSignedCert, offerTls11, type HttpsAnswer, type HttpsCallOptions } from '../helpers/tls.ts';
import { waitFor } from '../helpers/wait.ts';
import { auditFiles, bearer, readAudit, startSecurityStack } from './helpers.ts';

const FHIR = JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'tls test' } });

let stack: TestStack;
let tlsService: InterfaceService;
let cert: Buffer;
let port: number;

beforeAll(async () => {
  stack = await startSecurityStack();
  const made = await makeSelfSignedCert(stack.dir);
  cert = made.cert;
  const config = loadInterfaceConfig({
    ...stack.env.iface,
    HOST: '127.0.0.1',
    PORT: '0',
    TLS_CERT_FILE: made.certFile,
    TLS_KEY_FILE: made.keyFile,
    AUDIT_FILE: join(stack.dir, 'interface-tls-audit.jsonl'),
  });
  tlsService = await startInterfaceService(config, { logger: captureLogger('interface').logger });
  port = (tlsService.server.server.address() as { port: number }).port;
});
afterAll(async () => {
  await tlsService?.stop();
  await stack?.stop();
});

function httpsCall(path: string, options: HttpsCallOptions = {}): Promise<HttpsAnswer> {
  return httpsCallTo(port, cert, path, options);
}

describe('TLS on a real interface service (TLS_CERT_FILE / TLS_KEY_FILE)', () => {
  it('serves HTTPS at TLS 1.2 or later with HSTS and the helmet headers; a submission over it is accepted', async () => {
    const health = await httpsCall('/healthz');
    expect(health.status).toBe(200);
    expect(['TLSv1.2', 'TLSv1.3']).toContain(health.protocol);
    expect(health.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    expect(health.headers['x-content-type-options']).toBe('nosniff');
    expect(health.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(health.headers['content-security-policy']).toContain("default-src 'none'");
    expect(health.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(health.headers['referrer-policy']).toBe('no-referrer');
    expect(health.headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(health.headers['x-powered-by']).toBeUndefined();

    expect((await httpsCall('/healthz', { maxVersion: 'TLSv1.2' })).protocol).toBe('TLSv1.2');

    const res = await httpsCall('/v1/submissions', { method: 'POST', headers: { ...bearer(stack.tokens.partner), 'content-type': 'application/fhir+json' }, body: FHIR });
    expect(res.status).toBe(202);
    expect(res.headers['strict-transport-security']).toBeDefined();
    const { id } = JSON.parse(res.body) as { id: string };
    await waitFor(() => stack.app.inbox.get(id), { what: 'record relayed from the TLS service' });
    stack.app.inbox.ack(id);
  });

  it('refuses a client that offers at most TLS 1.1', async () => {
    const refused = await offerTls11(port);
    expect(refused.code).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });

  it('does not answer plain HTTP on the TLS port', async () => {
    const answer = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(answer).not.toBe(200);
  });
});

describe('behind a proxy: PUBLIC_BASE_URL and TRUST_PROXY', () => {
  it('with TRUST_PROXY naming the proxy, X-Forwarded-For is the audited source IP; the https PUBLIC_BASE_URL turns HSTS on and is the OpenAPI server', async () => {
    const proxied = await startInterfaceService(
      loadInterfaceConfig({ ...stack.env.iface, TRUST_PROXY: '10.0.0.0/8', PUBLIC_BASE_URL: 'https://relay.example.org/', AUDIT_FILE: join(stack.dir, 'interface-proxy-audit.jsonl') }),
      { logger: captureLogger('interface').logger, listen: false },
    );
    try {
      const res = await proxied.server.inject({
        method: 'POST',
        url: '/v1/submissions',
        headers: { ...bearer('unknown-token-value'), 'content-type': 'application/fhir+json', 'x-forwarded-for': '203.0.113.77', 'x-forwarded-proto': 'https' },
        payload: FHIR,
        remoteAddress: '10.0.0.5',
      });
      expect(res.statusCode).toBe(401);
      expect(res.headers['strict-transport-security']).toContain('max-age=31536000');
      const lines = await readAudit(join(stack.dir, 'interface-proxy-audit.jsonl'));
      expect(lines.find((l) => l.action === 'auth.failure')?.sourceIp).toBe('203.0.113.77');
      const doc = (await proxied.server.inject({ method: 'GET', url: '/openapi.json' })).json<{ servers?: { url: string }[] }>();
      expect(doc.servers?.[0]?.url).toMatch(/^https:\/\/relay\.example\.org\/?$/);
    } finally {
      await proxied.stop();
    }
  });

  it('without TRUST_PROXY, X-Forwarded-For is ignored: the audited source IP is the peer address', async () => {
    const res = await stack.iface.server.inject({
      method: 'POST',
      url: '/v1/submissions',
      headers: { ...bearer('unknown-token-value'), 'content-type': 'application/fhir+json', 'x-forwarded-for': '203.0.113.78' },
      payload: FHIR,
      remoteAddress: '10.0.0.6',
    });
    expect(res.statusCode).toBe(401);
    expect(res.headers['strict-transport-security']).toBeUndefined();
    const lines = await readAudit(auditFiles(stack).iface);
    const line = lines.find((l) => l.action === 'auth.failure' && l.sourceIp === '10.0.0.6');
    expect(line).toBeDefined();
    expect(JSON.stringify(lines)).not.toContain('203.0.113.78');
  });
});
