import { Readable, Transform } from 'node:stream';
import type { Envelope } from '../../core/envelope/envelope.ts';
import { bodyBytes } from '../../core/envelope/envelope.ts';
import { isObjectError } from '../../core/objects/errors.ts';
import { isPointerEnvelope } from '../../core/objects/pointer.ts';
import type { LargeRead } from '../../core/runtime/largeObjects.ts';

/** Opens the checked plaintext of a chart update that came through S3 (LargeObjects.read). */
export type OpenLargePayload = (envelope: Envelope) => Promise<LargeRead | undefined>;

/** What one delivery attempt sends: media type, length and body (bytes, or a stream of the checked plaintext). */
export type EmrBody =
  | { kind: 'ready'; contentType: string; bytes: number; body: Uint8Array | ReadableStream<Uint8Array>; stream?: Readable; release?: () => void }
  | { kind: 'unavailable'; reason: string };

/**
 * An abort signal that fires once `ms` pass without `touch()`: a timeout per wait (for the
 * answer, or between two pieces of a streamed body) rather than for the whole attempt, so a
 * 100 MiB update is not cut off while it flows, and a stalled one is.
 */
export class IdleTimeout {
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;

  constructor(ms: number) {
    this.#timer = setTimeout(() => this.#controller.abort(), ms);
  }

  /** Fires when the time ran out. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Progress: the wait starts again. */
  touch(): void {
    if (this.#controller.signal.aborted) return;
    this.#timer.refresh();
  }

  /** Stops the timer. */
  clear(): void {
    clearTimeout(this.#timer);
  }

  /** A pass-through that touches the timeout with every chunk and once at its end. */
  watch(source: Readable): Readable {
    const touching = new Transform({
      transform: (chunk: Buffer, _enc, callback) => {
        this.touch();
        callback(null, chunk);
      },
      flush: (callback) => {
        this.touch();
        callback();
      },
    });
    source.on('error', (err) => touching.destroy(err));
    // A request cut short (timeout, shutdown) lets go of the object's read as well.
    touching.on('close', () => {
      if (!source.destroyed) source.destroy();
    });
    return source.pipe(touching);
  }
}

/**
 * The body of one delivery: the envelope's own bytes, or, for a pointer envelope, the object's
 * plaintext streamed from S3 (never held whole) with the pointer's media type and exact length.
 * An object that is gone or cannot be read is a transient failure: the next receive checks it
 * again, and quarantines it if it is bad (or missing after the retries).
 */
export async function emrBodyOf(envelope: Envelope, openLarge: OpenLargePayload | undefined, timeout: IdleTimeout): Promise<EmrBody> {
  if (!isPointerEnvelope(envelope)) {
    const body = bodyBytes(envelope);
    return { kind: 'ready', contentType: envelope.contentType, bytes: body.length, body };
  }
  if (!openLarge) return { kind: 'unavailable', reason: 'CR_OBJECT_STORE_NOT_CONFIGURED' };
  let large: LargeRead | undefined;
  try {
    large = await openLarge(envelope);
  } catch (err) {
    return { kind: 'unavailable', reason: isObjectError(err) ? err.code : 'CR_OBJECT_STORE_UNAVAILABLE' };
  }
  if (!large) return { kind: 'unavailable', reason: 'CR_OBJECT_MISSING' };
  const stream = timeout.watch(large.plaintext);
  const { plaintext } = large;
  const release = (): void => {
    stream.destroy();
    plaintext.destroy();
  };
  return { kind: 'ready', contentType: large.contentType, bytes: large.bytes, body: Readable.toWeb(stream) as unknown as ReadableStream<Uint8Array>, stream, release };
}

/** The reason a streamed body failed with (a `CR_OBJECT_*` code), if it did. */
export function streamFailure(body: EmrBody): string | undefined {
  if (body.kind !== 'ready' || !body.stream) return undefined;
  const err = body.stream.errored;
  if (!err) return undefined;
  return isObjectError(err) ? err.code : 'CR_OBJECT_STORE_UNAVAILABLE';
}
