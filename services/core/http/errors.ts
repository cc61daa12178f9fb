import { RelayError } from '../errors/relayError.ts';

/** Options of an {@link HttpError} beyond code, status and text. */
export interface HttpErrorOptions {
  /** Response headers that belong to the error (WWW-Authenticate, Retry-After). */
  headers?: Record<string, string>;
  /** Extra, non-PHI members for the problem document. */
  details?: Record<string, unknown>;
  /** The error that caused this one, for the log only. */
  cause?: unknown;
}

/** A public RelayError that also carries a problem `title` and response headers. */
export class HttpError extends RelayError {
  /** Short, fixed summary of the problem type (the problem document's `title`). */
  readonly title: string;
  /** Response headers sent with the problem document. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: string, status: number, title: string, detail: string, options: HttpErrorOptions = {}) {
    super(code, detail, { status, details: options.details, cause: options.cause });
    this.name = 'HttpError';
    this.title = title;
    this.headers = options.headers ?? {};
  }
}

/** One documented HTTP error code: its status, title and meaning (docs/errors.md mirrors this). */
export interface HttpErrorDoc {
  /** Stable code. */
  code: string;
  /** HTTP status it is sent with. */
  status: number;
  /** Problem `title`. */
  title: string;
}

/** Every code the shared HTTP layer can send, with its status and title. */
export const HTTP_ERRORS = {
  CR_AUTH_MISSING: { code: 'CR_AUTH_MISSING', status: 401, title: 'Authentication required' },
  CR_AUTH_INVALID: { code: 'CR_AUTH_INVALID', status: 401, title: 'Invalid credentials' },
  CR_AUTH_FORBIDDEN: { code: 'CR_AUTH_FORBIDDEN', status: 403, title: 'Forbidden' },
  CR_HTTP_VALIDATION: { code: 'CR_HTTP_VALIDATION', status: 400, title: 'Request validation failed' },
  CR_HTTP_MALFORMED_BODY: { code: 'CR_HTTP_MALFORMED_BODY', status: 400, title: 'Malformed request body' },
  CR_HTTP_BAD_REQUEST: { code: 'CR_HTTP_BAD_REQUEST', status: 400, title: 'Bad request' },
  CR_HTTP_BAD_URL: { code: 'CR_HTTP_BAD_URL', status: 400, title: 'Malformed URL' },
  CR_HTTP_METHOD_NOT_ALLOWED: { code: 'CR_HTTP_METHOD_NOT_ALLOWED', status: 405, title: 'Method not allowed' },
  CR_HTTP_REQUEST_TIMEOUT: { code: 'CR_HTTP_REQUEST_TIMEOUT', status: 408, title: 'Request timeout' },
  CR_HTTP_URI_TOO_LONG: { code: 'CR_HTTP_URI_TOO_LONG', status: 414, title: 'URI too long' },
  CR_HTTP_HEADERS_TOO_LARGE: { code: 'CR_HTTP_HEADERS_TOO_LARGE', status: 431, title: 'Request headers too large' },
  CR_HTTP_NOT_FOUND: { code: 'CR_HTTP_NOT_FOUND', status: 404, title: 'Not found' },
  CR_HTTP_BODY_TOO_LARGE: { code: 'CR_HTTP_BODY_TOO_LARGE', status: 413, title: 'Request body too large' },
  CR_PAYLOAD_TOO_LARGE: { code: 'CR_PAYLOAD_TOO_LARGE', status: 413, title: 'Payload too large to relay' },
  CR_HTTP_UNSUPPORTED_MEDIA_TYPE: { code: 'CR_HTTP_UNSUPPORTED_MEDIA_TYPE', status: 415, title: 'Unsupported media type' },
  CR_HTTP_RATE_LIMITED: { code: 'CR_HTTP_RATE_LIMITED', status: 429, title: 'Too many requests' },
  CR_HTTP_CLIENT_ERROR: { code: 'CR_HTTP_CLIENT_ERROR', status: 400, title: 'Request rejected' },
  CR_HTTP_INTERNAL: { code: 'CR_HTTP_INTERNAL', status: 500, title: 'Internal error' },
  CR_HTTP_UNAVAILABLE: { code: 'CR_HTTP_UNAVAILABLE', status: 503, title: 'Service unavailable' },
  CR_HTTP_NOT_READY: { code: 'CR_HTTP_NOT_READY', status: 503, title: 'Not ready' },
  CR_EMERGENCY_MODE: { code: 'CR_EMERGENCY_MODE', status: 503, title: 'Emergency mode' },
} as const satisfies Record<string, HttpErrorDoc>;

const BEARER_REALM = 'Bearer realm="care-relay"';

function make(doc: HttpErrorDoc, detail: string, options?: HttpErrorOptions, status = doc.status): HttpError {
  return new HttpError(doc.code, status, doc.title, detail, options);
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
