import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AuditSink } from '../core/audit/types.ts';
import { authPlugin, type TokenStore } from '../core/http/auth.ts';
import { healthPlugin, type ReadinessCheck } from '../core/http/health.ts';
import { metricsPlugin } from '../core/http/metrics.ts';
import { openapiPlugin } from '../core/http/openapi.ts';
import { createHttpServer, type TlsFiles } from '../core/http/server.ts';
import type { IdempotencyCache } from '../core/relay/idempotency.ts';
import type { Outbound } from '../core/relay/outbound.ts';
import { adminRoutes } from '../core/runtime/adminRoutes.ts';
import type { EmergencySwitch } from '../core/runtime/emergency.ts';
import type { PartnerEntry } from './intake/partners.ts';
import { intakeRoutes } from './intake/routes.ts';

/** Everything the interface service's HTTP side needs. */
export interface InterfaceServerOptions {
  /** Service logger. */
  logger: Logger;
  /** Partners (hashed tokens and controls). */
  partners: TokenStore<PartnerEntry>;
  /** Admin tokens (role `admin`), when configured. */
  admins?: TokenStore;
  /** Seals and sends submissions. */
  outbound: Outbound;
  /** Idempotency-Key memory. */
  idempotency: IdempotencyCache;
  /** Audit trail. */
  audit: AuditSink;
  /** Emergency switch. */
  emergency: EmergencySwitch;
  /** Metrics registry. */
  registry: Registry;
  /** Readiness checks (queue reachable, keys loaded). */
  checks: Record<string, ReadinessCheck>;
  /** Largest submission body. */
  bodyLimit: number;
  /** HTTPS certificate and key files. */
  tls?: TlsFiles;
  /** External URL behind a proxy. */
  publicBaseUrl?: string;
  /** Trust X-Forwarded-* from the proxy. */
  trustProxy?: boolean;
}

/** Builds the interface service's fastify instance (not listening yet). */
export async function buildInterfaceServer(options: InterfaceServerOptions): Promise<FastifyInstance> {
  const app = createHttpServer({
    logger: options.logger,
    bodyLimit: options.bodyLimit,
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.publicBaseUrl ? { publicBaseUrl: options.publicBaseUrl } : {}),
    ...(options.trustProxy ? { trustProxy: true } : {}),
  });
  await app.register(openapiPlugin, {
    title: 'care-relay interface',
    version: '1',
    description: 'Partner intake of continuing-care data, relayed encrypted to the app service.',
    ...(options.publicBaseUrl ? { publicBaseUrl: options.publicBaseUrl } : {}),
  });
  await app.register(metricsPlugin, { registry: options.registry });
  await app.register(healthPlugin, { checks: options.checks });
  await app.register(intakeRoutes, {
    partners: options.partners,
    outbound: options.outbound,
    idempotency: options.idempotency,
    audit: options.audit,
    emergency: options.emergency,
    bodyLimit: options.bodyLimit,
  });
  const admins = options.admins;
  if (admins) {
    await app.register(async (scope) => {
      await scope.register(authPlugin, { tokens: admins, audit: options.audit });
      await scope.register(adminRoutes, { emergency: options.emergency });
    });
  }
  return app;
}
