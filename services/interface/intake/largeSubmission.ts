import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditSink } from '../../core/audit/types.ts';
import type { StreamedBody } from '../../core/http/streamingBody.ts';
import { relayStreamedBody, type StreamedRelayDeps } from '../../core/objects/streamedIntake.ts';
import type { PayloadFormat } from '../../core/relay/contentTypes.ts';
import type { PartnerEntry } from './partners.ts';
import { submissionAccepted } from './accepted.ts';

/** What {@link acceptLargeSubmission} needs. */
export interface LargeSubmissionDeps extends StreamedRelayDeps {
  /** Audit trail. */
  audit: AuditSink;
}

/**
 * A submission too large for one message: streamed, sealed and uploaded (relayStreamedBody),
 * audited, then answered 202 like any other.
 */
export async function acceptLargeSubmission(
  deps: LargeSubmissionDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  partner: PartnerEntry,
  format: PayloadFormat,
  body: StreamedBody,
): Promise<FastifyReply> {
  const { id, replayed, created } = await relayStreamedBody(deps, request, {
    caller: partner.name,
    body,
    payload: { kind: 'care.submission', partner: partner.name, contentType: format.contentType, actor: partner.name, sourceIp: request.ip },
    onSent: (sent) => deps.audit.record(submissionAccepted(partner.name, sent.id, request.ip, { contentType: format.contentType, bytes: sent.bytes, object: true })),
  });
  // Answered from an earlier request's claim: its lines are written again (that request may have stopped before them).
  if (!created) await deps.large.recordCopy({ id, kind: 'care.submission', actor: partner.name, sourceIp: request.ip, auditWith: submissionAccepted(partner.name, id, request.ip, { contentType: format.contentType, object: true }) });
  request.log.info({ envelopeId: id, partner: partner.name, replayed, object: true }, 'submission accepted');
  return reply.code(202).send({ id });
}
