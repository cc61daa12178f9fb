import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AuditSink } from '../core/audit/types.ts';
import { authPlugin, type TokenStore } from '../core/http/auth.ts';
import type { ReadinessCheck } from '../core/http/health.ts';
import type { TlsFiles } from '../core/http/server.ts';
import { createServiceServer } from '../core/runtime/serviceServer.ts';
import type { IdempotencyCache } from '../core/relay/idempotency.ts';
import type { Outbound } from '../core/relay/outbound.ts';
import { adminRoutes } from '../core/runtime/adminRoutes.ts';
import type { EmergencySwitch } from '../core/runtime/emergency.ts';
import { chartUpdateRoutes } from './chartUpdates.ts';
import type { Inbox } from './inbox/inbox.ts';
import { inboxRoutes } from './inbox/routes.ts';

/** Everything the app service's HTTP side needs. */
export interface AppServerOptions {
  /** Service logger. */
  logger: Logger;
  /** API tokens with roles (reader, writer, messenger, admin). */
  tokens: TokenStore;
  /** The inbox. */
  inbox: Inbox;
  /** Seals and sends chart updates. */
  outbound: Outbound;
  /** Idempotency-Key memory. */
  idempotency: IdempotencyCache;
  /** Audit trail. */
  audit: AuditSink;
  /** Emergency switch. */
  emergency: EmergencySwitch;
  /** Metrics registry. */
  registry: Registry;
  /** Readiness checks. */
  checks: Record<string, ReadinessCheck>;
  /** Largest chart update body. */
  bodyLimit: number;
  /** Authenticated SMS routes (POST /v1/messages), when SMS is configured. */
  smsRoutes?: FastifyPluginAsync;
  /** Public, signature-checked SignalWire webhook routes, when SMS is configured. */
  smsWebhook?: FastifyPluginAsync;
  /** HTTPS certificate and key files. */
  tls?: TlsFiles | undefined;
  /** External URL behind a proxy (webhook signatures are checked against it). */
  publicBaseUrl?: string | undefined;
  /** Trust X-Forwarded-* from the proxy. */
  trustProxy?: boolean | undefined;
}

/** Builds the app service's fastify instance (not listening yet). */
export async function buildAppServer(options: AppServerOptions): Promise<FastifyInstance> {
  const app = await createServiceServer({
    title: 'care-relay app',
    description: 'Inbox of decrypted submissions, chart updates to the EMR, and SMS with redaction.',
    logger: options.logger,
    registry: options.registry,
    checks: options.checks,
    bodyLimit: options.bodyLimit,
    tls: options.tls,
    publicBaseUrl: options.publicBaseUrl,
    trustProxy: options.trustProxy,
  });
  if (options.smsWebhook) await app.register(options.smsWebhook);
  await app.register(async (api) => {
    await api.register(authPlugin, { tokens: options.tokens, audit: options.audit });
    await api.register(inboxRoutes, { inbox: options.inbox, audit: options.audit, emergency: options.emergency });
    await api.register(chartUpdateRoutes, { outbound: options.outbound, idempotency: options.idempotency, emergency: options.emergency, bodyLimit: options.bodyLimit });
    await api.register(adminRoutes, { emergency: options.emergency });
    if (options.smsRoutes) await api.register(options.smsRoutes);
  });
  return app;
}
