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
