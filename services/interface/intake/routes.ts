import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { AuditSink } from '../../core/audit/types.ts';
import { authPlugin, type TokenStore } from '../../core/http/auth.ts';
import type { AuthFailureLimiter } from '../../core/http/authFailures.ts';
import { httpErrors } from '../../core/http/errors.ts';
import { requirePartnerAddress } from './partnerAddress.ts';
import { rateLimitErrorResponseBuilder } from '../../core/http/problem.ts';
import { checkPayload, formatFor } from '../../core/relay/contentTypes.ts';
import type { Idempotency } from '../../core/relay/idempotency.ts';
import { StreamedBody } from '../../core/http/streamingBody.ts';
import type { LargeOutbound } from '../../core/objects/largeOutbound.ts';
import { registerRelayBodyParser, sendOrStream } from '../../core/objects/streamedIntake.ts';
import { submissionAccepted } from './accepted.ts';
import { acceptLargeSubmission } from './largeSubmission.ts';
import type { Outbound } from '../../core/relay/outbound.ts';
import type { EmergencySwitch } from '../../core/runtime/emergency.ts';
import type { PartnerEntry } from './partners.ts';

/** Dependencies of the intake routes. */
export interface IntakeOptions {
  /** Partners (hashed tokens and controls); reloadable. */
  partners: TokenStore<PartnerEntry>;
  /** Seals and sends to `interface-to-app`. */
  outbound: Outbound;
  /** Idempotency-Key claims, shared by every instance (state table). */
  idempotency: Idempotency;
  /** Audit trail. */
  audit: AuditSink;
  /** Emergency switch: intake answers 503 while on. */
  emergency: EmergencySwitch;
  /** Largest body read, bytes. */
  bodyLimit: number;
  /** Failed-authentication limiter of the service (429 and aggregated audit lines). */
  authFailures?: AuthFailureLimiter | undefined;
  /** Documents too large for one message, streamed through S3 (LARGE_OBJECT_BUCKET); absent = 413 as before. */
  large?: LargeOutbound | undefined;
}

const acceptedSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', description: 'Envelope id (UUIDv7): quote it when asking about this submission' } },
} as const;

/**
 * POST /v1/submissions: partner intake. Authenticates the partner's bearer token,
 * checks its address, content type and rate limit, validates the payload's shape,
 * seals it for the app service and answers 202 `{id}` only once SQS has accepted it.
 */
export const intakeRoutes: FastifyPluginAsync<IntakeOptions> = async (app: FastifyInstance, options) => {
  await app.register(authPlugin, { tokens: options.partners, audit: options.audit, failures: options.authFailures });
  await app.register(rateLimit, {
    global: false,
    hook: 'preHandler',
    keyGenerator: (request) => request.principal?.name ?? request.ip,
    errorResponseBuilder: rateLimitErrorResponseBuilder,
  });
  const { large } = options;
  // Past one message (with LARGE_OBJECT_BUCKET), the body is not read here but streamed into S3 by the handler.
  registerRelayBodyParser(app, { smallBytes: options.bodyLimit, large });

  app.post(
    '/v1/submissions',
    {
      bodyLimit: options.bodyLimit,
      config: {
        role: 'partner',
        rateLimit: {
          max: (request) => (request.principal ? options.partners.byName(request.principal.name)?.rateLimitPerMinute ?? 60 : 60),
          timeWindow: 60_000,
        },
      },
      schema: {
        summary: 'Submit continuing-care data (FHIR JSON, HL7 v2, C-CDA XML)',
        headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', maxLength: 200 } } },
        response: { 202: acceptedSchema },
      },
      onRequest: async (request) => {
        if (options.emergency.active) throw httpErrors.emergency();
        await requirePartnerAddress(request, options, 'POST /v1/submissions', 'This address may not submit for this partner.');
      },
    },
    async (request, reply) => {
      const partner = options.partners.byName(request.principal!.name)!;
      const format = formatFor(request.headers['content-type'], partner.contentTypes);
      const body = request.body;
      if (large && body instanceof StreamedBody) return acceptLargeSubmission({ large, idempotency: options.idempotency, audit: options.audit }, request, reply, partner, format, body);
      if (!Buffer.isBuffer(body)) throw httpErrors.unsupportedMediaType();
      checkPayload(format, body);
      const key = request.headers['idempotency-key'];
      const details = { contentType: format.contentType, bytes: body.length };
      const { id, replayed, created } = await options.idempotency.run(partner.name, typeof key === 'string' ? key : undefined, body, format.contentType, async (decidedId) => {
        const small = {
          id: decidedId,
          kind: 'care.submission',
          partner: partner.name,
          contentType: format.contentType,
          bodyEncoding: format.bodyEncoding,
          body,
          actor: partner.name,
          sourceIp: request.ip,
          // On disk with the send's `message.relayed` line, in the same write, before the send resolves.
          auditWith: submissionAccepted(partner.name, decidedId, request.ip, details),
        };
        return sendOrStream(options.outbound, large, small);
      });
      // Answered from an earlier request's claim: its lines are written again (that request may have stopped before them).
      if (!created) await options.outbound.recordCopy({ id, kind: 'care.submission', actor: partner.name, sourceIp: request.ip, auditWith: submissionAccepted(partner.name, id, request.ip, details) });
      request.log.info({ envelopeId: id, partner: partner.name, replayed }, 'submission accepted');
      return reply.code(202).send({ id });
    },
  );
};
