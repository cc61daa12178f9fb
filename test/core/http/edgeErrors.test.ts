import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpServer } from '../../../services/core/http/server.ts';
import { PROBLEM_TYPE_BASE } from '../../../services/core/errors/relayError.ts';
import { captureLogger } from './helpers.ts';

// Planted PHI: none of it may come back in a response (or a log line).
const SSN = '123-45-6789';
const NAME = 'Jane-Q-Patient';

let app: FastifyInstance | undefined;
let logs: ReturnType<typeof captureLogger>;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function serve(options: { requestTimeoutMs?: number; headersTimeoutMs?: number } = {}): Promise<number> {
  logs = captureLogger();
  app = createHttpServer({ logger: logs.logger, bodyLimit: 64, ...options });
  app.get('/v1/inbox/:id', async () => ({ ok: true }));
  app.post('/v1/things', async () => ({ ok: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as AddressInfo).port;
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
}

/** Writes `request` byte for byte on a new socket and reads until the server closes it (or 10 s pass). */
function rawRequest(port: number, request: string | Buffer, opts: { end?: boolean } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(request);
      if (opts.end) socket.end();
    });
    let raw = '';
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on('data', (chunk: Buffer) => (raw += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const [head = '', ...rest] = raw.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
      if (!m) return reject(new Error(`no HTTP response: ${JSON.stringify(raw.slice(0, 200))}`));
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(m[1]), headers, body: rest.join('\r\n\r\n'), raw });
    });
  });
}

function expectProblemRaw(res: RawResponse, status: number, code: string): void {
  expect(res.status, res.raw.slice(0, 300)).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.headers['cache-control']).toBe('no-store');
  const doc = JSON.parse(res.body) as Record<string, unknown>;
  expect(doc).toMatchObject({ status, code, type: PROBLEM_TYPE_BASE + code.toLowerCase().replace(/^cr_/, '').replaceAll('_', '-') });
  expect(typeof doc.title).toBe('string');
  expect(typeof doc.detail).toBe('string');
  expect(res.raw).not.toContain(SSN);
  expect(res.raw).not.toContain(NAME);
}

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: relay\r\nX-Patient: ${NAME}\r\n${extra}Connection: close\r\n\r\n`;
const post = (type: string, body: string): string =>
  `POST /v1/things?ssn=${SSN} HTTP/1.1\r\nHost: relay\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;

describe('every error is problem+json and echoes nothing, framework and socket errors included', () => {
  it('a bad URL with a planted SSN (/v1/inbox/<SSN>%E0%A4%A) is a 400 problem that does not quote the path', async () => {
    const port = await serve();
    expectProblemRaw(await rawRequest(port, get(`/v1/inbox/${SSN}%E0%A4%A`)), 400, 'CR_HTTP_BAD_URL');
    expect(logs.text()).not.toContain(SSN);
  });

  it('a path parameter over the router limit is a 414 problem without the parameter', async () => {
    const port = await serve();
    expectProblemRaw(await rawRequest(port, get(`/v1/inbox/${SSN}${'9'.repeat(200)}`)), 414, 'CR_HTTP_URI_TOO_LONG');
  });

  it('an unknown HTTP method is a 405 problem', async () => {
    const port = await serve();
    expectProblemRaw(await rawRequest(port, `FROB /v1/inbox/${SSN} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n`), 405, 'CR_HTTP_METHOD_NOT_ALLOWED');
  });

  it('headers over the size limit are a 431 problem that quotes none of them', async () => {
    const port = await serve();
    expectProblemRaw(await rawRequest(port, get('/v1/inbox/1', `X-Note: ${NAME} ${SSN} ${'x'.repeat(20_000)}\r\n`)), 431, 'CR_HTTP_HEADERS_TOO_LARGE');
  });

  it('a malformed request line or header is a 400 problem', async () => {
    const port = await serve();
    expectProblemRaw(await rawRequest(port, `GET /v1/inbox/1 HTTP/1.1\r\nHost: relay\r\nBad Header ${SSN}\r\n\r\n`), 400, 'CR_HTTP_BAD_REQUEST');
    expectProblemRaw(await rawRequest(port, `GET /v1/inbox/1 HTTP/1.1\r\nHost: relay\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n`), 400, 'CR_HTTP_BAD_REQUEST');
  });

  it('a client that stops sending its headers gets a 408 problem within the headers timeout', async () => {
    const port = await serve({ requestTimeoutMs: 1500, headersTimeoutMs: 1000 });
    const started = Date.now();
    const res = await rawRequest(port, `GET /v1/inbox/${SSN} HTTP/1.1\r\nHost: relay\r\nX-Patient: ${NAME}\r\n`);
    expectProblemRaw(res, 408, 'CR_HTTP_REQUEST_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(1000 + 2000);
  });

  it('unknown route 404, bad JSON 400, body over the limit 413 and an unsupported type 415 are problems too, over the socket', async () => {
    const port = await serve();
    expectProblemRaw(await rawRequest(port, get(`/v1/nothing/${SSN}`)), 404, 'CR_HTTP_NOT_FOUND');
    expectProblemRaw(await rawRequest(port, post('application/json', `{"ssn": "${SSN}"`)), 400, 'CR_HTTP_MALFORMED_BODY');
    expectProblemRaw(await rawRequest(port, post('application/json', JSON.stringify({ ssn: SSN, pad: 'x'.repeat(100) }))), 413, 'CR_HTTP_BODY_TOO_LARGE');
    expectProblemRaw(await rawRequest(port, post('application/x-patient', `${NAME}`)), 415, 'CR_HTTP_UNSUPPORTED_MEDIA_TYPE');
    expect(logs.text()).not.toContain(SSN);
    expect(logs.text()).not.toContain(NAME);
  });
});
