import type { FastifyInstance } from 'fastify';
import type { AuditSink } from '../core/audit/types.ts';
import { authPlugin, type TokenStore } from '../core/http/auth.ts';
import type { AuthFailureLimiter } from '../core/http/authFailures.ts';
import { createServiceServer, type ServiceServerOptions } from '../core/runtime/serviceServer.ts';
import type { Idempotency } from '../core/relay/idempotency.ts';
import type { Outbound } from '../core/relay/outbound.ts';
import { adminRoutes } from '../core/runtime/adminRoutes.ts';
import { statusRoutes } from '../core/runtime/statusRoutes.ts';
import type { EmergencySwitch } from '../core/runtime/emergency.ts';
import type { PartnerEntry } from './intake/partners.ts';
import { intakeRoutes } from './intake/routes.ts';
import type { LargeOutbound } from '../core/objects/largeOutbound.ts';
import { submissionStatusRoutes } from './status/routes.ts';
import type { SubmissionStatusTracker } from './status/submissionStatus.ts';

/** Everything the interface service's HTTP side needs. */
export interface InterfaceServerOptions extends Omit<ServiceServerOptions, 'title' | 'description' | 'bodyLimit'> {
  /** Partners (hashed tokens and controls). */
  partners: TokenStore<PartnerEntry>;
  /** Admin tokens (role `admin`), when configured. */
  admins?: TokenStore;
  /** Seals and sends submissions. */
  outbound: Outbound;
  /** Idempotency-Key memory. */
  idempotency: Idempotency;
  /** Audit trail. */
  audit: AuditSink;
  /** Emergency switch. */
  emergency: EmergencySwitch;
  /** Largest submission body. */
  bodyLimit: number;
  /** Failed-authentication limiter of the service (429 and aggregated audit lines). */
  authFailures?: AuthFailureLimiter | undefined;
  /** Streams documents too large for one message through S3 (LARGE_OBJECT_BUCKET). */
  large?: LargeOutbound | undefined;
  /** Submission status records: GET /v1/submissions/{id} when given. */
  submissionStatus?: SubmissionStatusTracker;
}

/** Builds the interface service's fastify instance (not listening yet). */
export async function buildInterfaceServer(options: InterfaceServerOptions): Promise<FastifyInstance> {
  const app = await createServiceServer({ ...options, title: 'care-relay interface', description: 'Partner intake of continuing-care data, relayed encrypted to the app service.' });
  await app.register(intakeRoutes, {
    partners: options.partners,
    outbound: options.outbound,
    idempotency: options.idempotency,
    audit: options.audit,
    emergency: options.emergency,
    bodyLimit: options.bodyLimit,
    authFailures: options.authFailures,
    large: options.large,
  });
  const submissionStatus = options.submissionStatus;
  if (submissionStatus) {
    await app.register(submissionStatusRoutes, { partners: options.partners, status: submissionStatus, audit: options.audit, authFailures: options.authFailures });
  }
  const admins = options.admins;
  if (admins) {
    await app.register(async (scope) => {
      await scope.register(authPlugin, { tokens: admins, audit: options.audit, failures: options.authFailures });
      await scope.register(adminRoutes, { emergency: options.emergency });
      await scope.register(statusRoutes, { service: 'interface', emergency: options.emergency, audit: options.audit });
    });
  }
  return app;
}
