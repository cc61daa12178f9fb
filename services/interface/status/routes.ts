import type { FastifyPluginAsync } from 'fastify';
import type { AuditSink } from '../../core/audit/types.ts';
import { authPlugin, type TokenStore } from '../../core/http/auth.ts';
import type { AuthFailureLimiter } from '../../core/http/authFailures.ts';
import { requirePartnerAddress } from '../intake/partnerAddress.ts';
import { isEnvelopeId, statusView, statusViewSchema } from '../../core/receipts/statusView.ts';
import type { PartnerEntry } from '../intake/partners.ts';
import { SUBMISSION_RANKS, type SubmissionStatusTracker } from './submissionStatus.ts';

/** Options for {@link submissionStatusRoutes}. */
export interface SubmissionStatusRouteOptions {
  /** Partners (hashed tokens and address controls). */
  partners: TokenStore<PartnerEntry>;
  /** The submission status records. */
  status: SubmissionStatusTracker;
  /** Audit trail (authentication decisions). */
  audit: AuditSink;
  /** Failed-authentication limiter of the service. */
  authFailures?: AuthFailureLimiter | undefined;
}

/**
 * GET /v1/submissions/{id} (role `partner`): the submitting partner's view of where its
 * submission stands, `accepted → queued → held → acknowledged`, or `rejected` /
 * `dead-lettered` with the reason code, each step with its time. Another partner's id, an
 * unknown id and an expired one get the same 404.
 */
export const submissionStatusRoutes: FastifyPluginAsync<SubmissionStatusRouteOptions> = async (app, options) => {
  await app.register(authPlugin, { tokens: options.partners, audit: options.audit, failures: options.authFailures });
  app.get<{ Params: { id: string } }>(
    '/v1/submissions/:id',
    {
      config: { role: 'partner' },
      schema: {
        summary: 'Where a submission stands: its status and timeline (the submitting partner only)',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } },
        response: { 200: statusViewSchema(Object.keys(SUBMISSION_RANKS)) },
      },
      onRequest: async (request) => {
        await requirePartnerAddress(request, options, 'GET /v1/submissions/:id', 'This address may not read for this partner.');
      },
    },
    async (request) => {
      const { id } = request.params;
      const record = isEnvelopeId(id) ? await options.status.get(id, request.principal!.name) : undefined;
      return statusView(id, record);
    },
  );
};
