// Documents too large for one message, on both routes that take them (partner intake on the
// interface, chart updates on the app): auth first, 413 before reading (Content-Length) and
// while streaming (chunked), and a client that goes away leaves no object behind.
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { largeDocument, streamRequest, testBucket } from '../../helpers/largeDocs.ts';
import type { CapturedLogger } from '../../helpers/logs.ts';
import { startStack, type TestStack } from '../../helpers/stack.ts';
import { startTestSqs, type TestSqs } from '../../helpers/sqs.ts';
import { waitFor } from '../../helpers/wait.ts';

const MiB = 1024 * 1024;
const LIMIT = 8 * MiB;

let sqs: TestSqs;
let bucket: Awaited<ReturnType<typeof testBucket>>;
let stack: TestStack;

/** One route that streams large bodies into S3. */
interface LargeRoute {
  name: string;
  url: string;
  /** A valid caller's headers. */
  caller(): Record<string, string>;
  /** Where the route's objects go. */
  prefix: string;
  logs(): CapturedLogger;
}

const routes: LargeRoute[] = [
  { name: 'POST /v1/submissions (interface)', url: '', caller: () => ({ authorization: `Bearer ${stack.tokens.partner}`, 'content-type': 'application/xml' }), prefix: 'interface-to-app/', logs: () => stack.logs.iface },
  { name: 'POST /v1/chart-updates (app)', url: '', caller: () => ({ authorization: `Bearer ${stack.tokens.writer}`, 'content-type': 'application/xml' }), prefix: 'app-to-interface/', logs: () => stack.logs.app },
];

beforeAll(async () => {
  sqs = await startTestSqs();
  bucket = await testBucket(sqs);
  const env = { ...bucket.env, LARGE_OBJECT_MAX_BYTES: String(LIMIT) };
  stack = await startStack({ sqs, ifaceEnv: env, appEnv: env });
  await stack.iface.server.listen({ port: 0, host: '127.0.0.1' });
  await stack.app.server.listen({ port: 0, host: '127.0.0.1' });
  routes[0]!.url = `http://127.0.0.1:${(stack.iface.server.server.address() as AddressInfo).port}/v1/submissions`;
  routes[1]!.url = `http://127.0.0.1:${(stack.app.server.server.address() as AddressInfo).port}/v1/chart-updates`;
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  bucket?.stop();
  await sqs?.stop();
});

/** Sends the headers and only `sent` bytes of the declared body, and resolves with the answer that came without the rest. */
function answerBeforeBody(url: string, headers: Record<string, string | number>, sent: number): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body });
        req.destroy();
      });
    });
    req.on('error', reject);
    req.write(Buffer.alloc(sent, 'x'));
  });
}

describe.each(routes)('large body limits: $name', (route) => {
  it('refuses a Content-Length past LARGE_OBJECT_MAX_BYTES with 413 problem+json before reading the body', async () => {
    const res = await answerBeforeBody(route.url, { ...route.caller(), 'content-length': LIMIT + 1 }, 1024);
    expect(res.status).toBe(413);
    expect(res.type).toContain('application/problem+json');
    expect(JSON.parse(res.body).code).toBe('CR_HTTP_BODY_TOO_LARGE');
  });

  it('authenticates before reading a large body: no token is 401 with the body unread', async () => {
    const res = await answerBeforeBody(route.url, { 'content-type': 'application/xml', 'content-length': 4 * MiB }, 1024);
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body).code).toBe('CR_AUTH_MISSING');
  });

  it('refuses a chunked body with 413 once it streams past the limit, and leaves no object', async () => {
    const res = await streamRequest(route.url, { method: 'POST', headers: route.caller(), body: largeDocument(LIMIT + MiB).stream });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text).code).toBe('CR_HTTP_BODY_TOO_LARGE');
    expect(await bucket.keys(route.prefix)).toEqual([]);
  }, 120_000);

  it('a client that disconnects mid-upload leaves no object behind', async () => {
    // A fresh connection: a kept-alive one may belong to an earlier, refused request.
    const req = request(route.url, { method: 'POST', agent: false, headers: { ...route.caller(), 'content-length': LIMIT } });
    req.on('error', () => undefined);
    // Past the first 5 MiB part, a multipart upload is under way when the client goes; the rest never comes.
    let sent = 0;
    const stalling = new Readable({
      read() {
        if (sent >= 7 * MiB) return;
        sent += 256 * 1024;
        this.push(Buffer.alloc(256 * 1024, 'x'));
      },
    });
    stalling.pipe(req);
    await waitFor(() => (req.socket?.bytesWritten ?? 0) >= 7 * MiB, { timeoutMs: 60_000, what: 'the bytes on the wire' });
    const lines = route.logs().lines.length;
    req.destroy();
    await waitFor(() => route.logs().lines.slice(lines).some((l) => l.includes('"reqId"')), { timeoutMs: 60_000, what: 'the request to end on the server' });
    expect(await bucket.keys()).toEqual([]);
  }, 120_000);
});
