// A chart update that came through S3 is streamed to the EMR from its checked plaintext,
// against a real local HTTP server: exact length and media type, a timeout per wait (not
// per attempt), and a stream that stalls or fails is never a delivery. Over MLLP it is refused.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope, type Envelope } from '../../../services/core/envelope/envelope.ts';
import { ObjectError } from '../../../services/core/objects/errors.ts';
import { OBJECT_POINTER_TYPE, encodePointer, objectKey } from '../../../services/core/objects/pointer.ts';
import { receiveLargeObjects, type LargeRead } from '../../../services/core/runtime/largeObjects.ts';
import type { ReceivedMessage } from '../../../services/core/transport/consumerTypes.ts';
import { createEmrClient, type EmrClient } from '../../../services/interface/delivery/emrClient.ts';
import { createMllpClient } from '../../../services/interface/delivery/mllpClient.ts';
import { routeByContentType } from '../../../services/interface/delivery/router.ts';

const KiB = 1024;
const signal = new AbortController().signal;

let server: Server;
let url: string;
const seen: Array<{ headers: Record<string, unknown>; bytes: number; sha256: string; complete: boolean }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    const done = (complete: boolean) => seen.push({ headers: req.headers, bytes, sha256: hash.digest('hex'), complete });
    req.on('end', () => {
      done(true);
      res.writeHead(200).end();
    });
    req.on('aborted', () => done(false));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/deliveries`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

function pointerEnvelope(contentType = 'application/xml', bytes = 64 * KiB): Envelope {
  const base = { kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: OBJECT_POINTER_TYPE };
  const id = buildEnvelope({ ...base, body: '{}' }).id;
  const pointer = encodePointer({ bucket: 'b-objects', key: objectKey('', 'app-to-interface', id), bytes, sha256: 'a'.repeat(64), contentType });
  return { ...buildEnvelope({ ...base, body: pointer }), id };
}

/** `count` chunks of 1 KiB, one every `everyMs`; then it stalls for good (`stall`) or fails (`fail`). */
function trickle(count: number, everyMs: number, end: 'end' | 'stall' | { fail: Error } = 'end'): { stream: Readable; sha256: string } {
  const chunks = Array.from({ length: count }, (_, i) => Buffer.alloc(KiB, i % 251));
  const sha256 = createHash('sha256').update(Buffer.concat(chunks)).digest('hex');
  let i = 0;
  const stream = new Readable({
    read() {
      if (i < count) {
        const chunk = chunks[i++]!;
        setTimeout(() => this.push(chunk), everyMs);
      } else if (end === 'end') this.push(null);
      else if (end !== 'stall') setTimeout(() => this.destroy(end.fail), everyMs);
    },
  });
  return { stream, sha256 };
}

function clientWith(read: LargeRead | undefined, timeoutMs: number): EmrClient {
  return createEmrClient({ url, timeoutMs, openLarge: async () => read });
}

describe('streaming a large chart update to the EMR', () => {
  it('sends the plaintext with the pointer\'s media type and exact Content-Length, and the envelope id as Idempotency-Key', async () => {
    const { stream, sha256 } = trickle(64, 0);
    const envelope = pointerEnvelope();
    const outcome = await clientWith({ contentType: 'application/xml', bytes: 64 * KiB, plaintext: stream }, 2_000).deliver(envelope, signal);
    expect(outcome).toEqual({ kind: 'delivered', status: 200 });
    const last = seen.at(-1)!;
    expect(last).toMatchObject({ bytes: 64 * KiB, sha256, complete: true });
    expect(last.headers).toMatchObject({ 'content-type': 'application/xml', 'content-length': String(64 * KiB), 'idempotency-key': envelope.id, 'x-care-relay-kind': 'chart.update' });
  });

  it('EMR_TIMEOUT_MS bounds each wait, not the attempt: a body that flows for longer than the timeout is delivered', async () => {
    // 20 chunks 40 ms apart: about 800 ms in all, with a 300 ms timeout.
    const { stream, sha256 } = trickle(20, 40);
    const outcome = await clientWith({ contentType: 'application/xml', bytes: 20 * KiB, plaintext: stream }, 300).deliver(pointerEnvelope('application/xml', 20 * KiB), signal);
    expect(outcome).toEqual({ kind: 'delivered', status: 200 });
    expect(seen.at(-1)).toMatchObject({ bytes: 20 * KiB, sha256, complete: true });
  });

  it('a body that stalls is cut off after the timeout (CR_EMR_TIMEOUT, retried) and its read is let go', async () => {
    const { stream } = trickle(4, 0, 'stall');
    const outcome = await clientWith({ contentType: 'application/xml', bytes: 64 * KiB, plaintext: stream }, 300).deliver(pointerEnvelope(), signal);
    expect(outcome).toEqual({ kind: 'transient', reason: 'CR_EMR_TIMEOUT' });
    expect(stream.destroyed).toBe(true);
  });

  it('a plaintext that fails its check on the way is not a delivery: retried with the object\'s reason, and the EMR got an incomplete body', async () => {
    const before = seen.length;
    const { stream } = trickle(8, 0, { fail: new ObjectError('CR_OBJECT_DIGEST_MISMATCH', 'the object decrypts to other bytes') });
    const outcome = await clientWith({ contentType: 'application/xml', bytes: 64 * KiB, plaintext: stream }, 2_000).deliver(pointerEnvelope(), signal);
    expect(outcome).toEqual({ kind: 'transient', reason: 'CR_OBJECT_DIGEST_MISMATCH' });
    await expect.poll(() => seen.length).toBe(before + 1);
    expect(seen.at(-1)!.complete).toBe(false);
  });

  it('an object gone since it was checked is retried as CR_OBJECT_MISSING (the next receive checks it again)', async () => {
    const before = seen.length;
    expect(await clientWith(undefined, 2_000).deliver(pointerEnvelope(), signal)).toEqual({ kind: 'transient', reason: 'CR_OBJECT_MISSING' });
    expect(seen.length).toBe(before);
  });
});

describe('large chart updates and MLLP', () => {
  it('routes by the payload\'s media type, and the MLLP client refuses a large HL7 v2 update without sending it (CR_MLLP_MESSAGE_TOO_LARGE)', async () => {
    // Port 9 (discard) is never connected to: the refusal comes first.
    const mllp = createMllpClient({ host: '127.0.0.1', port: 9, connectTimeoutMs: 200, ackTimeoutMs: 200, maxAttempts: 1 });
    const http: EmrClient = { deliver: async () => ({ kind: 'delivered', status: 200 }) };
    try {
      const emr = routeByContentType({ http, mllp });
      expect(await emr.deliver(pointerEnvelope('application/hl7-v2'), signal)).toEqual({ kind: 'rejected', reason: 'CR_MLLP_MESSAGE_TOO_LARGE' });
      expect(await emr.deliver(pointerEnvelope('application/xml'), signal)).toEqual({ kind: 'delivered', status: 200 });
    } finally {
      mllp.close();
    }
  });
});

describe('a pointer reaching a service without LARGE_OBJECT_BUCKET', () => {
  it('is dead-lettered (CR_OBJECT_STORE_NOT_CONFIGURED), never handed to the effect as if the pointer were the payload', async () => {
    const applied: string[] = [];
    const effects = receiveLargeObjects(undefined, { 'chart.update': async (e) => (applied.push(e.id), { status: 'done' }) });
    const message = { receiveCount: 1 } as ReceivedMessage;
    expect(await effects['chart.update']!(pointerEnvelope(), message, signal)).toEqual({ status: 'dead-letter', reason: 'CR_OBJECT_STORE_NOT_CONFIGURED' });
    const small = buildEnvelope({ kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/xml', body: '<a/>' });
    expect(await effects['chart.update']!(small, message, signal)).toEqual({ status: 'done' });
    expect(applied).toEqual([small.id]);
  });
});
