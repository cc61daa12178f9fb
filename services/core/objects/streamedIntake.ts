import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isRelayError } from '../errors/relayError.ts';
import { readSmallOrStream, type StreamedBody } from '../http/streamingBody.ts';
import { ACCEPTED_MEDIA_TYPES } from '../relay/contentTypes.ts';
import { RelayPathError } from '../relay/errors.ts';
import type { IdempotentAnswer, Idempotency } from '../relay/idempotency.ts';
import type { Outbound, OutboundPayload } from '../relay/outbound.ts';
import type { LargeOutbound, LargePayload } from './largeOutbound.ts';

/**
 * Registers the body parser of a relaying route (partner intake, chart updates): every accepted
 * media type arrives as raw bytes (the relay never re-encodes a payload). Without `large` a body
 * past `smallBytes` is 413; with it, such a body is not read here but handed on as a
 * {@link StreamedBody} (413 before reading past `large.maxBytes` by Content-Length).
 */
export function registerRelayBodyParser(app: FastifyInstance, options: { smallBytes: number; large?: LargeOutbound | undefined }): void {
  const { large, smallBytes } = options;
  if (large) {
    const limits = { smallBytes, largeBytes: large.maxBytes };
    app.addContentTypeParser(ACCEPTED_MEDIA_TYPES as string[], (request: FastifyRequest, payload: Readable) => readSmallOrStream(payload, request.headers['content-length'], limits));
  } else {
    app.addContentTypeParser(ACCEPTED_MEDIA_TYPES as string[], { parseAs: 'buffer', bodyLimit: smallBytes }, (_request, body, done) => done(null, body));
  }
}

/** What {@link relayStreamedBody} needs. */
export interface StreamedRelayDeps {
  /** Streams the document into S3 and relays its pointer. */
  large: LargeOutbound;
  /** Idempotency-Key claims. */
  idempotency: Idempotency;
}

/** One streamed body to relay: who sent it, and the envelope fields besides id, body and signal. */
export interface StreamedRelayRequest {
  /** Whose Idempotency-Key space the request's key is claimed in (partner or token name). */
  caller: string;
  /** The unread body. */
  body: StreamedBody;
  /** Envelope fields of the payload. */
  payload: Omit<LargePayload, 'id' | 'body' | 'signal'>;
  /** Runs once the pointer is on SQS (audit), inside the idempotency claim. */
  onSent?: (sent: { id: string; bytes: number }) => Promise<void>;
}

/**
 * Relays a request body too large for one message: streamed, sealed and uploaded
 * (large.send) under the request's Idempotency-Key. The body is never held whole, so its
 * shape is not checked (its media type is); the key is matched on the media type and the
 * declared length, since the digest is known only once the body has streamed through. A
 * client that goes away aborts the upload: no object and no parts stay behind.
 */
export async function relayStreamedBody(deps: StreamedRelayDeps, request: FastifyRequest, relay: StreamedRelayRequest): Promise<IdempotentAnswer> {
  const key = request.headers['idempotency-key'];
  const marker = Buffer.from(`large-object:${relay.body.declaredBytes ?? 'chunked'}`);
  const abort = new AbortController();
  const onClose = (): void => {
    if (!request.raw.complete) abort.abort();
  };
  request.raw.once('close', onClose);
  try {
    return await deps.idempotency.run(relay.caller, typeof key === 'string' ? key : undefined, marker, relay.payload.contentType, async (decidedId) => {
      const sent = await deps.large.send({ ...relay.payload, id: decidedId, body: relay.body.stream, signal: abort.signal });
      await relay.onSent?.(sent);
      return sent.id;
    });
  } catch (err) {
    if (err instanceof RelayPathError && err.code === 'CR_IDEMPOTENCY_KEY_REUSED') relay.body.stream.resume();
    throw err;
  } finally {
    request.raw.off('close', onClose);
  }
}

/**
 * Sends a payload that was read whole: as one message when its sealed form fits, otherwise
 * (binary or escaped text grows when sealed) through S3 like a streamed one.
 */
export async function sendOrStream(outbound: Outbound, large: LargeOutbound | undefined, payload: OutboundPayload): Promise<string> {
  if (!large) return outbound.send(payload);
  try {
    return await outbound.send(payload);
  } catch (err) {
    if (!isRelayError(err, 'CR_PAYLOAD_TOO_LARGE')) throw err;
    const { bodyEncoding: _encoding, body, ...rest } = payload;
    return (await large.send({ ...rest, id: payload.id!, body: Readable.from([body]) })).id;
  }
}
