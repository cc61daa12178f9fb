import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer } from '../../../services/core/http/server.ts';
import { silentLogger } from '../../../services/core/log/logger.ts';
import { httpsCall, makeSelfSignedCert, offerTls11 } from '../../helpers/tls.ts';
import { captureLogger } from './helpers.ts';

let dir: string;
let cert: Buffer;
let files: { certFile: string; keyFile: string };
let app: FastifyInstance | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-tls-'));
  const made = await makeSelfSignedCert(dir);
  cert = made.cert;
  files = { certFile: made.certFile, keyFile: made.keyFile };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function listen(a: FastifyInstance): Promise<number> {
  await a.listen({ port: 0, host: '127.0.0.1' });
  return (a.server.address() as AddressInfo).port;
}

function httpsGet(port: number, path: string, maxVersion?: 'TLSv1.2' | 'TLSv1.3') {
  return httpsCall(port, cert, path, maxVersion ? { maxVersion } : {});
}

describe('createHttpServer with TLS', () => {
  it('serves HTTPS with TLS 1.2 or later, HSTS, and refuses a TLS 1.1 client', async () => {
    app = createHttpServer({ logger: silentLogger, bodyLimit: 1024, tls: files });
    app.get('/ping', async () => ({ pong: true }));
    const port = await listen(app);

    const res = await httpsGet(port, '/ping');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ pong: true });
    expect(['TLSv1.2', 'TLSv1.3']).toContain(res.protocol);
    expect(res.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');

    const v12 = await httpsGet(port, '/ping', 'TLSv1.2');
    expect(v12.protocol).toBe('TLSv1.2');

    // The client really offers TLS 1.1; the server must refuse it.
    const refused = await offerTls11(port);
    expect(refused.code).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });

  it('accepts PEM contents as well as files', async () => {
    app = createHttpServer({ logger: silentLogger, bodyLimit: 1024, tls: { cert, key: await readFile(files.keyFile) } });
    app.get('/ping', async () => ({ pong: true }));
    const port = await listen(app);
    expect((await httpsGet(port, '/ping')).status).toBe(200);
  });

  it('fails at start naming an unreadable certificate file', () => {
    expect(() => createHttpServer({ logger: silentLogger, bodyLimit: 1, tls: { certFile: join(dir, 'none.pem'), keyFile: join(dir, 'key.pem') } })).toThrow(
      /TLS certificate file .*none\.pem: cannot read \(ENOENT\)/,
    );
    expect(() => createHttpServer({ logger: silentLogger, bodyLimit: 1, tls: { cert: 'not a pem', key: 'not a pem' } })).toThrow(
      expect.objectContaining({ code: 'CR_HTTP_TLS_INVALID' }),
    );
  });
});

describe('createHttpServer over plain HTTP', () => {
  it('sends no HSTS without TLS, but does behind an https public URL; exposes publicBaseUrl', async () => {
    app = createHttpServer({ logger: silentLogger, bodyLimit: 1024 });
    app.get('/ping', async () => ({ pong: true }));
    const plain = await app.inject('/ping');
    expect(plain.headers['strict-transport-security']).toBeUndefined();
    expect(plain.headers['x-content-type-options']).toBe('nosniff');
    expect(app.publicBaseUrl).toBeUndefined();
    await app.close();

    app = createHttpServer({ logger: silentLogger, bodyLimit: 1024, publicBaseUrl: 'https://relay.example.org/base/', trustProxy: ['127.0.0.1'] });
    app.get('/ip', async (request) => ({ ip: request.ip, protocol: request.protocol }));
    expect(app.publicBaseUrl).toBe('https://relay.example.org/base');
    const res = await app.inject({ url: '/ip', headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' } });
    expect(res.headers['strict-transport-security']).toContain('max-age=31536000');
    expect(res.json()).toEqual({ ip: '203.0.113.9', protocol: 'https' });
  });

  it('logs requests with method, path, request id and address only: no body, query, or Authorization', async () => {
    const logs = captureLogger();
    app = createHttpServer({ logger: logs.logger, bodyLimit: 1024, requestIdHeader: 'x-request-id' });
    app.post('/v1/things', async () => ({ ok: true }));
    const port = await listen(app);
    const secret = 'Bearer sk_live_abcdef0123456789';
    const res = await new Promise<{ status: number; reqId: unknown }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, method: 'POST', path: '/v1/things?name=Jane-Doe', headers: { authorization: secret, 'content-type': 'application/json', 'x-request-id': 'trace-42' } },
        (r) => {
          r.resume();
          r.on('end', () => resolve({ status: r.statusCode!, reqId: r.headers['x-request-id'] }));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ patient: 'Jane-Doe', dob: '1970-01-01' }));
    });
    expect(res).toEqual({ status: 200, reqId: 'trace-42' });
    const incoming = logs.lines.find((l) => l.msg === 'incoming request')!;
    expect(incoming.req).toEqual({ method: 'POST', url: '/v1/things', reqId: 'trace-42', remoteAddress: '127.0.0.1' });
    expect(incoming.reqId).toBe('trace-42');
    const text = logs.text();
    for (const leaked of ['Jane-Doe', '1970-01-01', 'sk_live', 'authorization', 'name=']) expect(text).not.toContain(leaked);

    const generated = await app.inject({ url: '/v1/things', method: 'POST', payload: {}, headers: { 'x-request-id': 'bad id with spaces' } });
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
