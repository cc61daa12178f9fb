import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isRelayError } from '../../core/errors/relayError.ts';
import type { AuditSink } from '../../core/audit/types.ts';
import type { StreamedBody } from '../../core/http/streamingBody.ts';
import type { LargeOutbound } from '../../core/objects/largeOutbound.ts';
import type { PayloadFormat } from '../../core/relay/contentTypes.ts';
import type { Idempotency } from '../../core/relay/idempotency.ts';
import type { Outbound, OutboundPayload } from '../../core/relay/outbound.ts';
import { RelayPathError } from '../../core/relay/errors.ts';
import type { PartnerEntry } from './partners.ts';

/** What {@link acceptLargeSubmission} needs. */
export interface LargeSubmissionDeps {
  /** Streams the document into S3 and relays its pointer. */
  large: LargeOutbound;
  /** Idempotency-Key claims. */
  idempotency: Idempotency;
  /** Audit trail. */
  audit: AuditSink;
}

/**
 * A submission too large for one message: streamed, sealed and uploaded (large.send), then
 * answered 202 like any other. The body is never held whole, so its shape is not checked
 * here (the media type is); an Idempotency-Key is matched on the media type and declared
 * length, since the digest is known only once the body has streamed through.
 */
export async function acceptLargeSubmission(
  deps: LargeSubmissionDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  partner: PartnerEntry,
  format: PayloadFormat,
  body: StreamedBody,
): Promise<FastifyReply> {
  const key = request.headers['idempotency-key'];
  const marker = Buffer.from(`large-object:${body.declaredBytes ?? 'chunked'}`);
  // The client going away aborts the upload: no object, no parts stay behind.
  const abort = new AbortController();
  const onClose = (): void => {
    if (!request.raw.complete) abort.abort();
  };
  request.raw.once('close', onClose);
  try {
    const { id, replayed } = await deps.idempotency.run(partner.name, typeof key === 'string' ? key : undefined, marker, format.contentType, async (decidedId) => {
      const sent = await deps.large.send({
        id: decidedId,
        kind: 'care.submission',
        partner: partner.name,
        contentType: format.contentType,
        body: body.stream,
        actor: partner.name,
        sourceIp: request.ip,
        signal: abort.signal,
      });
      await deps.audit.record({
        action: 'submission.accepted',
        actor: partner.name,
        resourceType: 'envelope',
        resourceId: sent.id,
        outcome: 'success',
        sourceIp: request.ip,
        details: { contentType: format.contentType, bytes: sent.bytes, object: true },
      });
      return sent.id;
    });
    request.log.info({ envelopeId: id, partner: partner.name, replayed, object: true }, 'submission accepted');
    return reply.code(202).send({ id });
  } catch (err) {
    if (err instanceof RelayPathError && err.code === 'CR_IDEMPOTENCY_KEY_REUSED') body.stream.resume();
    throw err;
  } finally {
    request.raw.off('close', onClose);
  }
}

/**
 * Sends a payload that was read whole: as one message when its sealed form fits, otherwise
 * (binary or escaped text grows when sealed) through S3 like a streamed one.
 */
export async function sendOrStream(outbound: Outbound, large: LargeOutbound, payload: OutboundPayload): Promise<string> {
  try {
    return await outbound.send(payload);
  } catch (err) {
    if (!isRelayError(err, 'CR_PAYLOAD_TOO_LARGE')) throw err;
    const { bodyEncoding: _encoding, body, ...rest } = payload;
    return (await large.send({ ...rest, id: payload.id!, body: Readable.from([body]) })).id;
  }
}
