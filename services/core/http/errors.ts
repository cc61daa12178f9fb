import { defineErrors, type ErrorCode, type ErrorDefinition } from '../errors/defineErrors.ts';
import { fromCatalogue, RelayError } from '../errors/relayError.ts';

/** Options of an {@link HttpError} beyond code, status and text. */
export interface HttpErrorOptions {
  /** Response headers that belong to the error (WWW-Authenticate, Retry-After). */
  headers?: Record<string, string>;
  /** Extra, non-PHI members for the problem document. */
  details?: Record<string, unknown>;
  /** The error that caused this one, for the log only. */
  cause?: unknown;
}

/** Every code the shared HTTP layer can send, with its status and title (docs/errors.md, "HTTP and auth"). */
export const HTTP_ERRORS = defineErrors({
  CR_AUTH_MISSING: { status: 401, title: 'Authentication required', description: 'No bearer token was sent.' },
  CR_AUTH_INVALID: { status: 401, title: 'Invalid credentials', description: 'The bearer token is not (or no longer) valid.' },
  CR_AUTH_FORBIDDEN: { status: 403, title: 'Forbidden', description: 'Authenticated, but not allowed to do this.' },
  CR_HTTP_VALIDATION: { status: 400, title: 'Request validation failed', description: 'The request does not match the route schema.' },
  CR_HTTP_MALFORMED_BODY: { status: 400, title: 'Malformed request body', description: 'The body could not be parsed.' },
  CR_HTTP_BAD_REQUEST: { status: 400, title: 'Bad request', description: 'Some other malformed request.' },
  CR_HTTP_BAD_URL: { status: 400, title: 'Malformed URL', description: 'The URL could not be decoded; it is not quoted back.' },
  CR_HTTP_METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed', description: 'The method is unknown to the server.' },
  CR_HTTP_REQUEST_TIMEOUT: { status: 408, title: 'Request timeout', description: 'The request (headers or body) did not arrive within its timeout.' },
  CR_HTTP_URI_TOO_LONG: { status: 414, title: 'URI too long', description: 'A path parameter is longer than the router accepts.' },
  CR_HTTP_HEADERS_TOO_LARGE: { status: 431, title: 'Request headers too large', description: 'The request headers exceed the server limit.' },
  CR_HTTP_NOT_FOUND: { status: 404, title: 'Not found', description: 'No such route or resource.' },
  CR_HTTP_BODY_TOO_LARGE: { status: 413, title: 'Request body too large', description: 'The HTTP body exceeds the body limit.' },
  CR_PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload too large to relay', description: 'The payload would not fit in one sealed message.' },
  CR_HTTP_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type', description: 'The Content-Type is not accepted here.' },
  CR_HTTP_RATE_LIMITED: { status: 429, title: 'Too many requests', description: 'Rate limit exceeded.' },
  CR_HTTP_CLIENT_ERROR: { status: 400, title: 'Request rejected', description: 'Another 4xx a library raised; sent with that library\'s status.' },
  CR_HTTP_INTERNAL: { status: 500, title: 'Internal error', description: 'An unexpected error; the body says nothing more.' },
  CR_HTTP_UNAVAILABLE: { status: 503, title: 'Service unavailable', description: 'Temporarily unavailable (backpressure).' },
  CR_HTTP_NOT_READY: { status: 503, title: 'Not ready', description: 'A readiness check failed.' },
  CR_EMERGENCY_MODE: { status: 503, title: 'Emergency mode', description: 'Emergency mode is on.' },
} as const);

/** One of the {@link HTTP_ERRORS} codes. */
export type HttpErrorCode = ErrorCode<typeof HTTP_ERRORS>;

/** Start-up errors of the HTTP layer, never sent to a client (docs/errors.md, "HTTP and auth"). */
export const HTTP_SETUP_ERRORS = defineErrors({
  CR_HTTP_TLS_INVALID: { title: 'TLS configuration invalid', description: 'The TLS certificate or key file cannot be read or used.' },
  CR_AUTH_TOKENS_FILE_INVALID: { title: 'Tokens file invalid', description: 'The tokens file cannot be read or is invalid.' },
} as const);

/** One of the {@link HTTP_SETUP_ERRORS} codes. */
export type HttpSetupErrorCode = ErrorCode<typeof HTTP_SETUP_ERRORS>;

/** A catalogued HTTP error: its code, status and title. */
export type HttpErrorDoc = ErrorDefinition<HttpErrorCode>;

/** A public RelayError of the HTTP layer: status and title from {@link HTTP_ERRORS}, plus response headers. */
export class HttpError extends RelayError {
  /** The stable code (narrows in a `switch`). */
  override readonly code: HttpErrorCode;
  /** Short, fixed summary of the problem type (the problem document's `title`). */
  override readonly title: string;
  /** Response headers sent with the problem document. */
  readonly headers: Readonly<Record<string, string>>;

  /** `status` overrides the catalogued one only for CR_HTTP_CLIENT_ERROR (sent with the library's 4xx). */
  constructor(code: HttpErrorCode, detail: string, options: HttpErrorOptions & { status?: number } = {}) {
    const entry = HTTP_ERRORS[code];
    super(code, detail, fromCatalogue(entry, { status: options.status, details: options.details, cause: options.cause }));
    this.name = 'HttpError';
    this.code = code;
    this.title = entry.title;
    this.headers = options.headers ?? {};
  }
}

const BEARER_REALM = 'Bearer realm="care-relay"';

function make(doc: HttpErrorDoc, detail: string, options: HttpErrorOptions = {}, status?: number): HttpError {
  return new HttpError(doc.code, detail, status === undefined ? options : { ...options, status });
}

function retryAfter(seconds: number | undefined): Record<string, string> {
  return seconds === undefined ? {} : { 'retry-after': String(Math.max(0, Math.ceil(seconds))) };
}

/** Factories for the shared HTTP errors; throw them from a route or hook and the problem handler renders them. */
export const httpErrors = {
  /** 401: no bearer token was sent. */
  authMissing: () => make(HTTP_ERRORS.CR_AUTH_MISSING, 'A bearer token is required.', { headers: { 'www-authenticate': BEARER_REALM } }),
  /** 401: the bearer token is not (or no longer) valid. */
  authInvalid: () =>
    make(HTTP_ERRORS.CR_AUTH_INVALID, 'The bearer token is not valid.', {
      headers: { 'www-authenticate': `${BEARER_REALM}, error="invalid_token"` },
    }),
  /** 403: authenticated, but not allowed to do this. */
  forbidden: (detail = 'The credentials do not grant access to this resource.') => make(HTTP_ERRORS.CR_AUTH_FORBIDDEN, detail),
  /** 400: the request failed schema validation; `detail` must not echo payload values. */
  validation: (detail: string) => make(HTTP_ERRORS.CR_HTTP_VALIDATION, detail),
  /** 400: the body could not be parsed (bad JSON, empty JSON body). */
  malformedBody: () => make(HTTP_ERRORS.CR_HTTP_MALFORMED_BODY, 'The request body could not be parsed.'),
  /** 400: some other malformed request. */
  badRequest: (detail = 'The request is malformed.') => make(HTTP_ERRORS.CR_HTTP_BAD_REQUEST, detail),
  /** 400: the URL cannot be decoded (bad percent-encoding); never quotes the URL. */
  badUrl: () => make(HTTP_ERRORS.CR_HTTP_BAD_URL, 'The request URL is malformed.'),
  /** 405: the method is not one this server knows. */
  methodNotAllowed: () => make(HTTP_ERRORS.CR_HTTP_METHOD_NOT_ALLOWED, 'The request method is not supported.'),
  /** 408: the request (headers or body) did not arrive within the server's timeout. */
  requestTimeout: () => make(HTTP_ERRORS.CR_HTTP_REQUEST_TIMEOUT, 'The request was not received in time.'),
  /** 414: a path segment is longer than the router accepts; never quotes it. */
  uriTooLong: () => make(HTTP_ERRORS.CR_HTTP_URI_TOO_LONG, 'The request URL is too long.'),
  /** 431: the request headers exceed the server's limit; never quotes them. */
  headersTooLarge: () => make(HTTP_ERRORS.CR_HTTP_HEADERS_TOO_LARGE, 'The request headers are too large.'),
  /** 404: no such route or resource. */
  notFound: (detail = 'No such resource.') => make(HTTP_ERRORS.CR_HTTP_NOT_FOUND, detail),
  /** 413: the HTTP body exceeds the server's body limit. */
  bodyTooLarge: (limitBytes?: number) =>
    make(
      HTTP_ERRORS.CR_HTTP_BODY_TOO_LARGE,
      limitBytes === undefined ? 'The request body is too large.' : `The request body exceeds ${limitBytes} bytes.`,
      limitBytes === undefined ? undefined : { details: { limitBytes } },
    ),
  /** 413: the payload would not fit in one relayed message once sealed. */
  payloadTooLarge: (detail = 'The payload is too large to relay.') => make(HTTP_ERRORS.CR_PAYLOAD_TOO_LARGE, detail),
  /** 415: the Content-Type is not accepted here. */
  unsupportedMediaType: (detail = 'The Content-Type is not supported here.') => make(HTTP_ERRORS.CR_HTTP_UNSUPPORTED_MEDIA_TYPE, detail),
  /** 429: rate limit exceeded; Retry-After in seconds. */
  rateLimited: (retryAfterSeconds?: number) =>
    make(HTTP_ERRORS.CR_HTTP_RATE_LIMITED, 'Too many requests; retry later.', { headers: retryAfter(retryAfterSeconds) }),
  /** 503: temporarily unavailable (e.g. backpressure); Retry-After in seconds. */
  unavailable: (retryAfterSeconds = 30, detail = 'The service is temporarily unavailable; retry later.') =>
    make(HTTP_ERRORS.CR_HTTP_UNAVAILABLE, detail, { headers: retryAfter(retryAfterSeconds) }),
  /** 503: emergency mode is on; nothing is accepted or read until it is turned off. */
  emergency: (retryAfterSeconds = 300) =>
    make(HTTP_ERRORS.CR_EMERGENCY_MODE, 'The service is in emergency mode; retry later.', { headers: retryAfter(retryAfterSeconds) }),
  /** 503: a readiness check failed; `checks` maps each check name to `ok`, `failed` or `timeout`. */
  notReady: (checks: Record<string, string>) =>
    make(HTTP_ERRORS.CR_HTTP_NOT_READY, `Readiness checks failed: ${Object.keys(checks).filter((k) => checks[k] !== 'ok').join(', ')}.`, {
      details: { checks },
    }),
  /** 500: the generic internal error; says nothing about the cause. */
  internal: (cause?: unknown) =>
    make(HTTP_ERRORS.CR_HTTP_INTERNAL, 'An internal error occurred.', cause === undefined ? undefined : { cause }),
  /** Any other 4xx a library raised (e.g. a rate-limit ban), with a generic detail. */
  clientError: (status: number) => make(HTTP_ERRORS.CR_HTTP_CLIENT_ERROR, 'The request was rejected.', undefined, status),
};
