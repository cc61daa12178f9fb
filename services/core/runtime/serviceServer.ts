import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { healthPlugin, type ReadinessCheck } from '../http/health.ts';
import { metricsPlugin } from '../http/metrics.ts';
import { openapiPlugin } from '../http/openapi.ts';
import { createHttpServer, type TlsFiles } from '../http/server.ts';

/** What every care-relay service's HTTP server is built from. */
export interface ServiceServerOptions {
  /** OpenAPI title, e.g. `care-relay interface`. */
  title: string;
  /** OpenAPI description. */
  description: string;
  /** Service logger. */
  logger: Logger;
  /** Metrics registry served at /metrics. */
  registry: Registry;
  /** Readiness checks for /readyz. */
  checks: Record<string, ReadinessCheck>;
  /** Largest request body. */
  bodyLimit: number;
  /** HTTPS certificate and key files. */
  tls?: TlsFiles | undefined;
  /** External URL behind a proxy. */
  publicBaseUrl?: string | undefined;
  /** Longest time to receive a whole request, ms. */
  requestTimeoutMs?: number | undefined;
  /** Longest time to receive the request headers, ms. */
  headersTimeoutMs?: number | undefined;
  /** Addresses/CIDR blocks of the proxies whose X-Forwarded-* are trusted; none when empty. */
  trustProxy?: readonly string[] | undefined;
}

/**
 * The fastify instance both services start from: the shared HTTP server (TLS, helmet,
 * problem+json, body limit), the OpenAPI document, /metrics, /healthz and /readyz.
 * The service registers its own routes on it.
 */
export async function createServiceServer(options: ServiceServerOptions): Promise<FastifyInstance> {
  const app = createHttpServer({
    logger: options.logger,
    bodyLimit: options.bodyLimit,
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.publicBaseUrl ? { publicBaseUrl: options.publicBaseUrl } : {}),
    ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    ...(options.headersTimeoutMs !== undefined ? { headersTimeoutMs: options.headersTimeoutMs } : {}),
    ...(options.trustProxy && options.trustProxy.length > 0 ? { trustProxy: [...options.trustProxy] } : {}),
  });
  await app.register(openapiPlugin, {
    title: options.title,
    version: '1',
    description: options.description,
    ...(options.publicBaseUrl ? { publicBaseUrl: options.publicBaseUrl } : {}),
  });
  await app.register(metricsPlugin, { registry: options.registry });
  await app.register(healthPlugin, { checks: options.checks });
  return app;
}

/** The TLS files (and cipher list) of a configuration, when both files are set. */
export function tlsOf(config: { TLS_CERT_FILE?: string | undefined; TLS_KEY_FILE?: string | undefined; TLS_CIPHERS?: string | undefined }): TlsFiles | undefined {
  return config.TLS_CERT_FILE && config.TLS_KEY_FILE ? { certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE, ciphers: config.TLS_CIPHERS } : undefined;
}

/** The HTTP options every service takes from its configuration: TLS, proxy, timeouts. */
export function httpOptionsOf(config: {
  TLS_CERT_FILE?: string | undefined;
  TLS_KEY_FILE?: string | undefined;
  PUBLIC_BASE_URL?: string | undefined;
  TRUST_PROXY: readonly string[];
  HTTP_REQUEST_TIMEOUT_MS: number;
  HTTP_HEADERS_TIMEOUT_MS: number;
}): Pick<ServiceServerOptions, 'tls' | 'publicBaseUrl' | 'trustProxy' | 'requestTimeoutMs' | 'headersTimeoutMs'> {
  return {
    tls: tlsOf(config),
    publicBaseUrl: config.PUBLIC_BASE_URL,
    trustProxy: config.TRUST_PROXY,
    requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
    headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS,
  };
}
