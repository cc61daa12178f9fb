import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isRelayError } from '../errors/relayError.ts';
import { digestStreamedBody, discardRest, readSmallOrStream, StreamedBody } from '../http/streamingBody.ts';
import { ACCEPTED_MEDIA_TYPES } from '../relay/contentTypes.ts';
import type { IdempotentAnswer, Idempotency } from '../relay/idempotency.ts';
import type { Outbound, OutboundPayload } from '../relay/outbound.ts';
import type { LargeOutbound, LargePayload } from './largeOutbound.ts';
import { isObjectConflict } from './objectStore.ts';

/**
 * Registers the body parser of a relaying route (partner intake, chart updates): every accepted
 * media type arrives as raw bytes (the relay never re-encodes a payload). Without `large` a body
 * past `smallBytes` is 413; with it, such a body is not read here but handed on as a
 * {@link StreamedBody} (413 before reading past `large.maxBytes` by Content-Length). A streamed
 * body the route answered without reading through (a refusal: 409, 415, 429…) is read to its end
 * and discarded once the answer is sent, so that a keep-alive connection carries the client's next
 * request; more than `large.maxBytes` of it closes the connection instead.
 */
export function registerRelayBodyParser(app: FastifyInstance, options: { smallBytes: number; large?: LargeOutbound | undefined }): void {
  const { large, smallBytes } = options;
  if (large) {
    const limits = { smallBytes, largeBytes: large.maxBytes };
    app.addContentTypeParser(ACCEPTED_MEDIA_TYPES as string[], (request: FastifyRequest, payload: Readable) => readSmallOrStream(payload, request.headers['content-length'], limits));
    app.addHook('onResponse', async (request) => {
      if (request.body instanceof StreamedBody) discardRest(request.body, large.maxBytes, () => request.raw.destroy());
    });
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
 * shape is not checked (its media type is). The key is claimed on the media type; the body's
 * size and SHA-256 are recorded with the claim once it has streamed through, before its pointer
 * is relayed. A retry with the same key reads its body through and answers the same id when it
 * matches, 409 when it differs; the claim's lease is renewed while the upload runs, and a retry
 * that takes over a stopped one uploads to an object key of its own. A client that goes away
 * aborts the upload: no object and no parts stay behind.
 */
export async function relayStreamedBody(deps: StreamedRelayDeps, request: FastifyRequest, relay: StreamedRelayRequest): Promise<IdempotentAnswer> {
  if (!deps.idempotency.runStreamed) throw new Error('relayStreamedBody: the Idempotency given cannot claim streamed bodies (runStreamed)');
  const key = request.headers['idempotency-key'];
  const abort = new AbortController();
  const onClose = (): void => {
    if (!request.raw.complete) abort.abort();
  };
  request.raw.once('close', onClose);
  const { body } = relay;
  try {
    const compared = { declaredBytes: body.declaredBytes, digest: () => digestStreamedBody(body, deps.large.maxBytes) };
    return await deps.idempotency.runStreamed(relay.caller, typeof key === 'string' ? key : undefined, relay.payload.contentType, compared, async (decidedId, attempt) => {
      const sent = await deps.large.send({
        ...relay.payload,
        id: decidedId,
        body: body.stream,
        signal: AbortSignal.any([abort.signal, attempt.lost]),
        beforeRelay: attempt.settle,
        ...(attempt.takeover ? { separateObject: true } : {}),
      });
      await relay.onSent?.(sent);
      return sent.id;
    });
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
    const stream = (separateObject: boolean): LargePayload => ({ ...rest, id: payload.id!, body: Readable.from([body]), ...(separateObject ? { separateObject } : {}) });
    try {
      return (await large.send(stream(false))).id;
    } catch (conflict) {
      // An earlier attempt of this id (a retry that took over its Idempotency-Key) stored its object: this one gets a key of its own.
      if (!isObjectConflict(conflict)) throw conflict;
      return (await large.send(stream(true))).id;
    }
  }
}
