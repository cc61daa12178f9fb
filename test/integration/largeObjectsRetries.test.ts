// Large documents under retries and refusals, through both real services: an Idempotency-Key
// retry arriving while a slow upload outlasts the claim's lease waits for it (one object, one
// relay, the held record still readable); a retry is matched on the body itself (another document
// under the same key is 409, never silently dropped); a streamed body answered without being read
// (replay, 409, 415, 429) does not hang the keep-alive connection; and a large record whose object
// cannot be read is audited as a failed read.
import { Agent, request } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { hashToken } from '../../services/core/http/auth.ts';
import { largeDocument, streamRequest } from '../helpers/largeDocs.ts';
import { useLargeStack } from '../helpers/largeStack.ts';
import { readTrail } from '../helpers/trail.ts';
import { waitFor } from '../helpers/wait.ts';

const MiB = 1024 * 1024;
const large = useLargeStack();

/** What a client saw: the status and body, or that no answer came within `timeoutMs`; whether its socket was a reused one. */
interface Answer {
  status: number;
  text: string;
  reusedSocket: boolean;
  ms: number;
}

/** POSTs `body` to the interface's intake through `agent`; rejects when no answer came within `timeoutMs`. */
function post(body: Readable, headers: Record<string, string | number>, options: { agent?: Agent; timeoutMs?: number; token?: string; onRequest?: (req: ReturnType<typeof request>) => void } = {}): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = request(`${large.ifaceUrl}/v1/submissions`, {
      method: 'POST',
      agent: options.agent ?? new Agent({ keepAlive: false }),
      headers: { authorization: `Bearer ${options.token ?? large.stack.tokens.partner}`, 'content-type': 'application/cda+xml', ...headers },
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer within ${options.timeoutMs ?? 120_000} ms`));
    }, options.timeoutMs ?? 120_000);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text, reusedSocket: req.reusedSocket, ms: Date.now() - started });
      });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    options.onRequest?.(req);
    body.pipe(req);
  });
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** `doc` in 40 pieces spread over `ms`: a slow client whose upload outlasts the Idempotency-Key claim's 10 s lease. */
function slowly(doc: Buffer, ms: number): Readable {
  const pieces = 40;
  const size = Math.ceil(doc.length / pieces);
  let i = 0;
  return new Readable({
    read() {
      const chunk = i < pieces ? doc.subarray(i * size, (i + 1) * size) : null;
      i += 1;
      setTimeout(() => this.push(chunk), chunk ? ms / pieces : 0);
    },
  });
}

const objectKeysOf = async (id: string): Promise<string[]> => (await large.bucket.keys(`${large.sqs.prefix}interface-to-app/`)).filter((k) => k.includes(id));
const ack = (id: string) => large.stack.app.server.inject({ method: 'POST', url: `/v1/inbox/${id}/ack`, headers: { authorization: `Bearer ${large.stack.tokens.reader}` } });
const readRecord = (id: string) => streamRequest(`${large.appUrl}/v1/inbox/${id}`, { method: 'GET', headers: { authorization: `Bearer ${large.stack.tokens.reader}` } });
const idOf = (a: Answer): string => (JSON.parse(a.text) as { id: string }).id;

describe('large documents under retries', () => {
  it('a same-key retry during an upload that outlasts the claim lease waits for it: one object, its ETag kept, the held record readable', async () => {
    const doc = await bytesOf(largeDocument(3 * MiB, 31).stream);
    const key = `slow-${Date.now()}`;
    let slowReq: ReturnType<typeof request> | undefined;
    const first = post(slowly(doc, 14_000), { 'content-length': doc.length, 'idempotency-key': key }, { onRequest: (r) => (slowReq = r) });
    await waitFor(() => (slowReq?.socket?.bytesWritten ?? 0) > 256 * 1024, { what: 'the slow upload under way' });
    const second = post(Readable.from([doc]), { 'content-length': doc.length, 'idempotency-key': key });
    const a = await first;
    expect(a.status, a.text).toBe(202);
    const id = idOf(a);
    const stored = await objectKeysOf(id);
    expect(stored).toHaveLength(1);
    const etag = (await large.bucket.client.send(new HeadObjectCommand({ Bucket: large.bucket.bucket, Key: stored[0] }))).ETag;
    const b = await second;
    expect(b.status, b.text).toBe(202);
    expect(idOf(b)).toBe(id);
    await waitFor(() => large.stack.app.inbox.get(id), { timeoutMs: 60_000, what: 'the record held' });
    expect(await objectKeysOf(id)).toEqual(stored);
    expect((await large.bucket.client.send(new HeadObjectCommand({ Bucket: large.bucket.bucket, Key: stored[0] }))).ETag).toBe(etag);
    const read = await readRecord(id);
    expect(read.status, read.text).toBe(200);
    expect(read.bytes).toBe(doc.length);
    expect((await ack(id)).statusCode).toBe(200);
  }, 120_000);

  it('another document under the same key is 409 CR_IDEMPOTENCY_KEY_REUSED (chunked, and with the same Content-Length); the same one answers the same id', async () => {
    const key = `body-${Date.now()}`;
    const first = await post(largeDocument(3 * MiB, 41).stream, { 'idempotency-key': key });
    expect(first.status, first.text).toBe(202);
    const id = idOf(first);
    const same = await post(largeDocument(3 * MiB, 41).stream, { 'idempotency-key': key });
    expect([same.status, idOf(same)]).toEqual([202, id]);
    for (const headers of [{}, { 'content-length': 3 * MiB }] as Array<Record<string, number>>) {
      const other = await post(largeDocument(3 * MiB, 42).stream, { 'idempotency-key': key, ...headers });
      expect(other.status, other.text).toBe(409);
      expect(JSON.parse(other.text).code).toBe('CR_IDEMPOTENCY_KEY_REUSED');
      expect(other.text).not.toContain('Quackenbush');
    }
    await waitFor(() => large.stack.app.inbox.get(id), { timeoutMs: 60_000, what: 'the record held' });
    expect(await objectKeysOf(id)).toHaveLength(1);
    expect(large.stack.app.inbox.list(1000).filter((r) => r.id !== id && r.bytes === 3 * MiB)).toEqual([]);
    expect((await ack(id)).statusCode).toBe(200);
  }, 120_000);
});

describe('a streamed body answered without being read', () => {
  it('leaves the keep-alive connection able to carry the next request: replay (202), 409, 415 and 429', async () => {
    // A partner allowed one media type and one request a minute, besides the stack's own.
    const file = large.stack.env.iface.PARTNERS_FILE!;
    const partners = JSON.parse(await readFile(file, 'utf8')) as { tokens: unknown[] };
    const strictToken = `strict-${Date.now()}-token-value`;
    partners.tokens.push({ name: 'strict-partner', sha256: hashToken(strictToken), rateLimitPerMinute: 1, contentTypes: ['application/fhir+json'] });
    await writeFile(file, JSON.stringify(partners));
    large.stack.iface.reload();

    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const next = async (what: string): Promise<void> => {
      const small = await post(Readable.from([Buffer.from('<ClinicalDocument/>')]), { 'content-type': 'application/xml' }, { agent, timeoutMs: 10_000 }).catch((err: Error) => {
        throw new Error(`after ${what}: ${err.message}`);
      });
      expect(small.status, `after ${what}: ${small.text}`).toBe(202);
      expect(small.reusedSocket, `after ${what}: the same connection`).toBe(true);
    };
    const key = `ka-${Date.now()}`;
    expect((await post(largeDocument(3 * MiB, 51).stream, { 'idempotency-key': key }, { agent })).status).toBe(202);
    await next('the first');

    const replay = await post(largeDocument(3 * MiB, 51).stream, { 'idempotency-key': key }, { agent, timeoutMs: 30_000 });
    expect(replay.status).toBe(202);
    await next('a replay');

    // Another length than the key's recorded body: 409 before a byte of it is read.
    const conflict = await post(largeDocument(3 * MiB + 1, 51).stream, { 'idempotency-key': key, 'content-length': 3 * MiB + 1 }, { agent, timeoutMs: 30_000 });
    expect(conflict.status, conflict.text).toBe(409);
    await next('a 409');

    const unsupported = await post(largeDocument(3 * MiB, 52).stream, { 'content-type': 'application/xml' }, { agent, timeoutMs: 30_000, token: strictToken });
    expect(unsupported.status, unsupported.text).toBe(415);
    await next('a 415');

    // The 415 took the partner's one request of the minute.
    const limited = await post(largeDocument(3 * MiB, 54).stream, {}, { agent, timeoutMs: 30_000, token: strictToken });
    expect(limited.status, limited.text).toBe(429);
    await next('a 429');
    agent.destroy();
    for (const r of large.stack.app.inbox.list(1000)) await ack(r.id);
  }, 180_000);
});

describe('reading a large record', () => {
  it('whose object cannot be read answers 503 and is audited as a failed read, not a success', async () => {
    const sent = await post(largeDocument(2 * MiB, 61).stream, { 'content-length': 2 * MiB });
    expect(sent.status).toBe(202);
    const id = idOf(sent);
    await waitFor(() => large.stack.app.inbox.get(id), { timeoutMs: 60_000, what: 'the record held' });
    for (const k of await objectKeysOf(id)) await large.bucket.client.send(new DeleteObjectCommand({ Bucket: large.bucket.bucket, Key: k }));
    const read = await readRecord(id);
    expect(read.status).toBe(503);
    const lines = await waitFor(async () => {
      const found = (await readTrail(large.stack.env.app.AUDIT_FILE!)).filter((l) => l.resourceId === id && l.action === 'inbox.read');
      return found.length > 0 ? found : undefined;
    }, { what: 'the inbox.read line' });
    expect(lines.map((l) => l.outcome)).toEqual(['failure']);
    expect((await ack(id)).statusCode).toBe(200);
  }, 120_000);
});
