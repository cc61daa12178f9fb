import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { isRelayError, type RelayError } from '../errors/relayError.ts';
import { HttpError, httpErrors } from './errors.ts';

export { HTTP_ERRORS, HttpError, httpErrors, type HttpErrorCode, type HttpErrorDoc, type HttpErrorOptions } from './errors.ts';

/** Media type of every error response (RFC 9457). */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** An RFC 9457 problem document as care-relay sends it. */
export interface ProblemDocument {
  /** Stable URI per code (`https://care-relay.dev/problems/<slug>`). */
  type: string;
  /** Fixed summary of the problem type. */
  title: string;
  /** HTTP status. */
  status: number;
  /** Explanation of this occurrence; never PHI, tokens or request values. */
  detail: string;
  /** Stable care-relay code (`CR_*`). */
  code: string;
  /** Extension members from the error's `details`. */
  [extension: string]: unknown;
}

/** Builds the problem document of a public RelayError. */
export function problemDocument(err: RelayError): ProblemDocument {
  const status = err.status ?? 500;
  const title = err.title ?? STATUS_CODES[status] ?? 'Error';
  return { ...err.details, type: err.type, title, status, detail: err.message, code: err.code };
}

/** Sends a public RelayError as `application/problem+json` with its headers (Retry-After, WWW-Authenticate). */
export function sendProblem(reply: FastifyReply, err: RelayError): FastifyReply {
  const doc = problemDocument(err);
  if (err instanceof HttpError) reply.headers(err.headers);
  const retry = err.details?.retryAfter;
  if (typeof retry === 'number' && !reply.hasHeader('retry-after')) reply.header('retry-after', String(Math.ceil(retry)));
  if (doc.status === 401 && !reply.hasHeader('www-authenticate')) reply.header('www-authenticate', 'Bearer realm="care-relay"');
  // An error can describe a protected resource (or its absence): no cache may keep it.
  reply.header('cache-control', 'no-store');
  return reply.code(doc.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(doc));
}

// Ajv keywords whose default messages are built from the schema only, never from the data.
const SAFE_KEYWORDS = new Set([
  'type', 'required', 'enum', 'const', 'format', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum',
  'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'additionalProperties', 'minItems', 'maxItems',
  'uniqueItems', 'minProperties', 'maxProperties', 'anyOf', 'oneOf', 'not', 'dependentRequired',
]);

interface ValidationIssue {
  keyword?: string;
  schemaPath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/**
 * A validation detail that never echoes request values: the field path comes from the
 * schema path (not the instance path, whose keys may be data) and the message only from
 * keywords whose messages are schema-derived.
 */
export function safeValidationDetail(context: string | undefined, issues: readonly ValidationIssue[]): string {
  const parts = issues.slice(0, 3).map((issue) => {
    const fields: string[] = [];
    const segs = (issue.schemaPath ?? '').replace(/^#\/?/, '').split('/');
    for (let i = 0; i < segs.length; i++) {
      if (segs[i] === 'properties' && segs[i + 1] !== undefined) fields.push(segs[++i]!);
      else if (segs[i] === 'items') fields.push('[]');
    }
    const where = [context ?? 'request', ...fields].join('.').replaceAll('.[]', '[]');
    const safe = issue.keyword !== undefined && SAFE_KEYWORDS.has(issue.keyword) && typeof issue.message === 'string';
    return `${where} ${safe ? issue.message : 'is invalid'}`;
  });
  return parts.length > 0 ? parts.join('; ') : `${context ?? 'request'} is invalid`;
}

/** Maps any thrown value to the public error that is sent, and whether it was unexpected. */
export function toPublicError(error: unknown, reply?: FastifyReply): { error: RelayError; unexpected: boolean } {
  if (isRelayError(error)) {
    if (error.status !== undefined && error.status >= 400 && error.status <= 599) return { error, unexpected: false };
    return { error: httpErrors.internal(error), unexpected: true };
  }
  const e = (error ?? {}) as Partial<FastifyError> & { validation?: ValidationIssue[] };
  if (Array.isArray(e.validation)) return { error: httpErrors.validation(safeValidationDetail(e.validationContext, e.validation)), unexpected: false };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { error: httpErrors.bodyTooLarge(), unexpected: false };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { error: httpErrors.unsupportedMediaType(), unexpected: false };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { error: httpErrors.malformedBody(), unexpected: false };
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status === 429) {
    const header = Number(reply?.getHeader('retry-after'));
    return { error: httpErrors.rateLimited(Number.isFinite(header) ? header : undefined), unexpected: false };
  }
  // A body parser's own failure (fastify sets 400 on it): a SyntaxError or a content-type parser code.
  if (status === 400 && (error instanceof SyntaxError || (e.code ?? '').startsWith('FST_ERR_CTP_'))) {
    return { error: httpErrors.malformedBody(), unexpected: false };
  }
  if (status === 400) return { error: httpErrors.badRequest(), unexpected: false };
  if (status > 400 && status < 500) return { error: httpErrors.clientError(status), unexpected: false };
  return { error: httpErrors.internal(error), unexpected: true };
}

/** What the log may hold about an error: name, code and stack frames (the message line dropped unless it is a RelayError). */
export function loggableError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { type: typeof error };
  const err = error as Error & { code?: unknown };
  const frames = (err.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)).map((l) => l.trim());
  const out: Record<string, unknown> = { name: err.name, code: typeof err.code === 'string' ? err.code : undefined, frames };
  // RelayError messages are PHI-free by contract; other messages may quote input (e.g. JSON.parse).
  if (isRelayError(err)) out.message = err.message;
  if (err.cause !== undefined) out.cause = loggableError(err.cause);
  return out;
}

function handleError(this: unknown, error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { error: pub, unexpected } = toPublicError(error, reply);
  if (unexpected) request.log.error({ error: loggableError(error) }, 'request failed');
  else request.log.info({ code: pub.code, status: pub.status }, 'request rejected');
  return sendProblem(reply, pub);
}

/**
 * The one error handler and not-found handler of a service: every error becomes
 * `application/problem+json`; unknown errors become a generic 500 and are logged
 * without message or request data.
 */
export const problemPlugin: FastifyPluginAsync = fp(
  async (app) => {
    app.setErrorHandler(handleError);
    app.setNotFoundHandler((request, reply) => {
      request.log.info({ code: 'CR_HTTP_NOT_FOUND' }, 'no route');
      return sendProblem(reply, httpErrors.notFound());
    });
  },
  { name: 'care-relay-problem', fastify: '5.x' },
);

/** @fastify/rate-limit `errorResponseBuilder`: 429 problem (403 when banned), Retry-After from the window. */
export function rateLimitErrorResponseBuilder(_request: FastifyRequest, context: { ttl: number; ban: boolean }): RelayError {
  return context.ban ? httpErrors.forbidden('Too many requests; access is suspended.') : httpErrors.rateLimited(context.ttl / 1000);
}
