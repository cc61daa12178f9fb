import type { FastifyRequest } from 'fastify';
import type { AuditSink } from '../../core/audit/types.ts';
import type { TokenStore } from '../../core/http/auth.ts';
import { httpErrors } from '../../core/http/errors.ts';
import { partnerAllows, type PartnerEntry } from './partners.ts';

/** Refuses (403, audited `auth.forbidden`) a partner request from an address outside that partner's allow-list. */
export async function requirePartnerAddress(
  request: FastifyRequest,
  deps: { partners: TokenStore<PartnerEntry>; audit: AuditSink },
  resourceId: string,
  refusal: string,
): Promise<void> {
  const partner = request.principal && deps.partners.byName(request.principal.name);
  if (partner && partnerAllows(partner, request.ip)) return;
  await deps.audit.record({
    action: 'auth.forbidden',
    actor: request.principal?.name ?? 'anonymous',
    resourceType: 'route',
    resourceId,
    outcome: 'failure',
    sourceIp: request.ip,
    details: { reason: 'address-not-allowed' },
  });
  throw httpErrors.forbidden(refusal);
}
