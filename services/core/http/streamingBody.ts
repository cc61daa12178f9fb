import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { httpErrors } from './errors.ts';

/** A request body too large for one message, handed on unread as a stream. */
export class StreamedBody {
  /** The body bytes (a prefix already read, then the rest of the request). */
  readonly stream: Readable;
  /** Content-Length, when the client sent one. */
  readonly declaredBytes: number | undefined;

  constructor(stream: Readable, declaredBytes: number | undefined) {
    this.stream = stream;
    this.declaredBytes = declaredBytes;
  }
}

/** Limits of {@link readSmallOrStream}. */
export interface BodyLimits {
  /** Bodies up to this many bytes are read whole into a Buffer (the one-message path). */
  smallBytes: number;
  /** Larger bodies, up to this many, are handed on as a stream; more is 413. */
  largeBytes: number;
}

function declaredLength(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  if (!/^\d{1,16}$/.test(header)) throw httpErrors.badRequest('Content-Length is malformed.');
  return Number(header);
}

/**
 * Reads a request body as a Buffer when it is small, or hands it on as a {@link StreamedBody}
 * when it is larger: by Content-Length when declared (past `largeBytes` it is refused with 413
 * before a byte is read), or, for a chunked body, once more than `smallBytes` have arrived.
 */
export async function readSmallOrStream(payload: Readable, contentLength: string | undefined, limits: BodyLimits): Promise<Buffer | StreamedBody> {
  const declared = declaredLength(contentLength);
  if (declared !== undefined && declared > limits.largeBytes) throw httpErrors.bodyTooLarge(limits.largeBytes);
  if (declared !== undefined && declared > limits.smallBytes) return new StreamedBody(payload, declared);
  const chunks: Buffer[] = [];
  let total = 0;
  const iterator = payload[Symbol.asyncIterator]();
  for (;;) {
    const next = await iterator.next();
    if (next.done) return Buffer.concat(chunks, total);
    const chunk = next.value as Buffer;
    chunks.push(chunk);
    total += chunk.length;
    if (total > limits.smallBytes) {
      if (declared !== undefined) throw httpErrors.bodyTooLarge(limits.smallBytes);
      // Chunked and past one message: the prefix read so far, then the rest, unread.
      const rest = async function* (): AsyncGenerator<Buffer> {
        try {
          yield* chunks.splice(0);
          for (let n = await iterator.next(); !n.done; n = await iterator.next()) yield n.value as Buffer;
        } finally {
          await iterator.return?.();
        }
      };
      return new StreamedBody(Readable.from(rest(), { objectMode: false }), undefined);
    }
  }
}

/**
 * Reads a streamed body through, discarding it, and resolves with its size and SHA-256 (an
 * Idempotency-Key retry compared with the claim's body); 413 past `maxBytes`, the stream destroyed.
 */
export async function digestStreamedBody(body: StreamedBody, maxBytes: number): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of body.stream as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > maxBytes) {
      body.stream.destroy();
      throw httpErrors.bodyTooLarge(maxBytes);
    }
    hash.update(chunk);
  }
  return { bytes, sha256: hash.digest('hex') };
}

/**
 * Reads and discards what is left of a body the handler answered without reading through (a
 * refusal, a replay): a keep-alive connection then carries the client's next request instead of
 * waiting for this body until the request timeout. Past `maxBytes` more, the stream is destroyed
 * and `overflow` runs (the caller closes the connection). A body read to its end, or destroyed, is left alone.
 */
export function discardRest(body: StreamedBody, maxBytes: number, overflow?: () => void): void {
  const { stream } = body;
  if (stream.readableEnded || stream.destroyed) return;
  let bytes = 0;
  stream.on('error', () => undefined);
  stream.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes <= maxBytes) return;
    stream.destroy();
    overflow?.();
  });
  stream.resume();
}
