import type { AuditEvent } from '../../core/audit/types.ts';

/** The `submission.accepted` audit event of partner `partner`'s submission `id`, from `sourceIp` (HTTP, MLLP, or streamed to S3). */
export function submissionAccepted(partner: string, id: string, sourceIp: string, details: NonNullable<AuditEvent['details']>): AuditEvent {
  return { action: 'submission.accepted', actor: partner, resourceType: 'envelope', resourceId: id, outcome: 'success', sourceIp, details };
}
