import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import helmet from '@fastify/helmet';
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import fastify, { type FastifyHttpOptions, type FastifyHttpsOptions, type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import { fromCatalogue, RelayError } from '../errors/relayError.ts';
import { createClientErrorHandler, frameworkErrorHandler } from './edgeErrors.ts';
import { HTTP_SETUP_ERRORS } from './errors.ts';
import { problemPlugin } from './problem.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** External base URL (`PUBLIC_BASE_URL`, no trailing slash) when behind a proxy; undefined otherwise. */
    publicBaseUrl: string | undefined;
  }
}

/**
 * The default cipher list: TLS 1.3's AEAD suites, and for TLS 1.2 only ECDHE key exchange
 * (forward secrecy) with AEAD ciphers (GCM, ChaCha20-Poly1305); no RSA key exchange, no CBC.
 */
export const DEFAULT_TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** TLS certificate and key given as PEM file paths. */
export interface TlsFiles {
  /** PEM certificate chain file. */
  certFile: string;
  /** PEM private key file. */
  keyFile: string;
  /** OpenSSL cipher list (TLS 1.2 and 1.3 suites); default {@link DEFAULT_TLS_CIPHERS}. */
  ciphers?: string | undefined;
}

/** TLS certificate and key given as PEM contents. */
export interface TlsMaterial {
  /** PEM certificate chain. */
  cert: string | Buffer;
  /** PEM private key. */
  key: string | Buffer;
  /** OpenSSL cipher list (TLS 1.2 and 1.3 suites); default {@link DEFAULT_TLS_CIPHERS}. */
  ciphers?: string | undefined;
}

/** Options for {@link createHttpServer}. */
export interface HttpServerOptions {
  /** The service's pino logger; request lines keep only method, path, request id and remote address. */
  logger: Logger;
  /** Largest accepted request body in bytes, on every route. */
  bodyLimit: number;
  /** Serve HTTPS (TLS 1.2 or later) with this certificate; plain HTTP when omitted. */
  tls?: TlsFiles | TlsMaterial;
  /** External URL clients use (behind a proxy); an https URL turns HSTS on. */
  publicBaseUrl?: string;
  /**
   * The proxy addresses/CIDR blocks whose X-Forwarded-* are trusted; the client address is the
   * right-most one in X-Forwarded-For that is not a trusted proxy. Never "every hop".
   */
  trustProxy?: readonly string[];
  /** Longest time to receive a whole request, in ms (default 30000; 0 disables). */
  requestTimeoutMs?: number;
  /** Longest time to receive the request headers, in ms (default 20000, at most requestTimeoutMs). */
  headersTimeoutMs?: number;
  /** Header whose value (letters, digits, `._-`, up to 64) is reused as request id, e.g. `x-request-id`; ids are generated otherwise. */
  requestIdHeader?: string;
}

/** Raised when the TLS certificate or key cannot be read or used; names the file or the problem. */
export class TlsConfigError extends RelayError {
  constructor(message: string, cause?: unknown) {
    super('CR_HTTP_TLS_INVALID', message, fromCatalogue(HTTP_SETUP_ERRORS.CR_HTTP_TLS_INVALID, { cause }));
    this.name = 'TlsConfigError';
  }
}

const SAFE_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TlsConfigError(`TLS ${what} file ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
  }
}

/** Log serializers that keep no body, header, query string or token. */
export const requestSerializers = {
  /**
   * Method, route pattern (`/v1/inbox/:id`; `unmatched` for a 404), request id and remote address.
   * Never the raw path or query: a caller can put an MRN or a name in either.
   */
  req: (req: FastifyRequest) => ({
    method: req.method,
    url: req.routeOptions?.url ?? 'unmatched',
    reqId: req.id,
    remoteAddress: req.ip,
  }),
  /** Status code only. */
  res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
};

/**
 * The fastify instance both services build on: injected logger with PHI-safe request
 * serializers, request ids, the body limit, TLS 1.2+ when a certificate is given, helmet
 * (HSTS under TLS or an https public URL), the problem+json error handler, `trustProxy`,
 * and the `publicBaseUrl` decorator. Register health/metrics/openapi/auth and routes on it.
 */
export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  let https: { cert: string | Buffer; key: string | Buffer; minVersion: 'TLSv1.2'; ciphers: string; honorCipherOrder: true } | undefined;
  if (options.tls) {
    const material = 'certFile' in options.tls
      ? { cert: readPem(options.tls.certFile, 'certificate'), key: readPem(options.tls.keyFile, 'key') }
      : { cert: options.tls.cert, key: options.tls.key };
    const ciphers = options.tls.ciphers ?? DEFAULT_TLS_CIPHERS;
    try {
      createSecureContext({ ciphers, minVersion: 'TLSv1.2' });
    } catch (err) {
      throw new TlsConfigError(`TLS cipher list "${ciphers}" is not usable (${err instanceof Error ? err.message : 'unusable'})`, err);
    }
    https = { ...material, minVersion: 'TLSv1.2', ciphers, honorCipherOrder: true };
  }
  let publicBaseUrl: string | undefined;
  if (options.publicBaseUrl !== undefined) {
    const url = new URL(options.publicBaseUrl);
    publicBaseUrl = url.href.replace(/\/+$/, '');
  }
  const idHeader = options.requestIdHeader?.toLowerCase();
  const requestTimeout = options.requestTimeoutMs ?? 30_000;
  const headersTimeout = Math.min(options.headersTimeoutMs ?? 20_000, requestTimeout || Number.MAX_SAFE_INTEGER);
  // Node enforces both timeouts only when it checks its connections (every 30 s by default),
  // so a 30 s timeout could hold a socket for a minute: check a few times per timeout.
  const connectionsCheckingInterval = Math.max(100, Math.min(1_000, Math.floor(Math.min(headersTimeout, requestTimeout || headersTimeout) / 4)));
  const socketTimeouts = { headersTimeout, requestTimeout, connectionsCheckingInterval };
  const serverOptions: FastifyServerOptions = {
    loggerInstance: options.logger.child({}, { serializers: requestSerializers }),
    bodyLimit: options.bodyLimit,
    trustProxy: options.trustProxy && options.trustProxy.length > 0 ? [...options.trustProxy] : false,
    requestTimeout,
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler: createClientErrorHandler(options.logger),
    genReqId: (req) => {
      const given = idHeader === undefined ? undefined : req.headers[idHeader];
      return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : randomUUID();
    },
  };
  let app: FastifyInstance;
  try {
    app = (https ? fastify({ ...serverOptions, https: { ...https, ...socketTimeouts } } as FastifyHttpsOptions<HttpsServer>) : fastify({ ...serverOptions, http: socketTimeouts } as FastifyHttpOptions<HttpServer>)) as unknown as FastifyInstance;
  } catch (err) {
    const reason = err instanceof Error ? err.message : 'unusable';
    throw new TlsConfigError(`TLS certificate or key is not usable (${reason})`, err);
  }

  const hsts = https !== undefined || publicBaseUrl?.startsWith('https:') === true;
  void app.register(helmet, {
    hsts: hsts ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  });
  void app.register(problemPlugin);
  app.decorate('publicBaseUrl', publicBaseUrl);
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // Authenticated answers carry PHI or access decisions, errors may too: never cached by a browser or proxy.
    const config = request.routeOptions.config as { role?: unknown } | undefined;
    if (config?.role !== undefined || reply.statusCode >= 400) reply.header('cache-control', 'no-store');
  });
  return app;
}

/**
 * Closes the server within `deadlineMs`: idle keep-alive connections at once (fastify's
 * default), requests in progress may finish until the deadline, then every connection left
 * (a client trickling a body, say) is closed.
 */
export async function closeHttpServer(app: FastifyInstance, deadlineMs: number): Promise<void> {
  const timer = setTimeout(() => app.server.closeAllConnections(), Math.max(0, deadlineMs));
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
  }
}
