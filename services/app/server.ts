import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { AuditSink } from '../core/audit/types.ts';
import { authPlugin, type TokenStore } from '../core/http/auth.ts';
import type { AuthFailureLimiter } from '../core/http/authFailures.ts';
import type { LargeOutbound } from '../core/objects/largeOutbound.ts';
import { createServiceServer, type ServiceServerOptions } from '../core/runtime/serviceServer.ts';
import type { Idempotency } from '../core/relay/idempotency.ts';
import type { Outbound } from '../core/relay/outbound.ts';
import { adminRoutes } from '../core/runtime/adminRoutes.ts';
import { statusRoutes } from '../core/runtime/statusRoutes.ts';
import type { EmergencySwitch } from '../core/runtime/emergency.ts';
import { chartUpdateRoutes } from './chartUpdates.ts';
import type { Inbox } from './inbox/inbox.ts';
import { inboxRoutes, type InboxRoutesOptions } from './inbox/routes.ts';
import type { ChartUpdateStatusTracker } from './status/chartUpdateStatus.ts';
import { chartUpdateStatusRoutes } from './status/routes.ts';

/** Everything the app service's HTTP side needs. */
export interface AppServerOptions extends Omit<ServiceServerOptions, 'title' | 'description' | 'bodyLimit'> {
  /** API tokens with roles (reader, writer, messenger, admin). */
  tokens: TokenStore;
  /** The inbox. */
  inbox: Inbox;
  /** Seals and sends chart updates. */
  outbound: Outbound;
  /** Idempotency-Key memory. */
  idempotency: Idempotency;
  /** Audit trail. */
  audit: AuditSink;
  /** Emergency switch. */
  emergency: EmergencySwitch;
  /** Largest chart update body. */
  bodyLimit: number;
  /** The service's keyed hash (chart updates' ordering buckets). */
  hash: (value: string) => string;
  /** Authenticated SMS routes (POST /v1/messages), when SMS is configured. */
  smsRoutes?: FastifyPluginAsync;
  /** Public, signature-checked SignalWire webhook routes, when SMS is configured. */
  smsWebhook?: FastifyPluginAsync;
  /** Failed-authentication limiter of the service (429 and aggregated audit lines). */
  authFailures?: AuthFailureLimiter | undefined;
  /** Streams chart updates too large for one message through S3 (LARGE_OBJECT_BUCKET). */
  large?: LargeOutbound | undefined;
  /** Whether a record was acknowledged before (its id marked applied): a repeated ack answers 200. */
  acknowledgedBefore: InboxRoutesOptions['acknowledgedBefore'];
  /** Opens a large inbox record's object (LARGE_OBJECT_BUCKET). */
  readObject?: InboxRoutesOptions['readObject'];
  /** Chart update status records: GET /v1/chart-updates/{id} when given. */
  chartUpdateStatus?: ChartUpdateStatusTracker;
}

/** Builds the app service's fastify instance (not listening yet). */
export async function buildAppServer(options: AppServerOptions): Promise<FastifyInstance> {
  const app = await createServiceServer({ ...options, title: 'care-relay app', description: 'Inbox of decrypted submissions, chart updates to the EMR, and SMS with redaction.' });
  if (options.smsWebhook) await app.register(options.smsWebhook);
  await app.register(async (api) => {
    await api.register(authPlugin, { tokens: options.tokens, audit: options.audit, failures: options.authFailures });
    await api.register(inboxRoutes, { inbox: options.inbox, audit: options.audit, emergency: options.emergency, acknowledgedBefore: options.acknowledgedBefore, readObject: options.readObject });
    await api.register(chartUpdateRoutes, { outbound: options.outbound, idempotency: options.idempotency, emergency: options.emergency, bodyLimit: options.bodyLimit, hash: options.hash, large: options.large });
    if (options.chartUpdateStatus) await api.register(chartUpdateStatusRoutes, { status: options.chartUpdateStatus });
    await api.register(adminRoutes, { emergency: options.emergency });
    await api.register(statusRoutes, { service: 'app', emergency: options.emergency, audit: options.audit, inbox: options.inbox });
    if (options.smsRoutes) await api.register(options.smsRoutes);
  });
  return app;
}
