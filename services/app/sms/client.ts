import { setTimeout as delay } from 'node:timers/promises';
import { RestClient, type CompatibilityApi, type CompatibilityAPIRestClientOptions } from '@signalwire/compatibility-api';
import type { Logger } from 'pino';
import { silentLogger } from '../../core/log/logger.ts';

/** The SDK client (a twilio-node 3.x fork) the SMS code talks through. */
export type SignalWireApi = CompatibilityApi;

/** Options for {@link createSignalWireClient}. */
export interface SignalWireClientOptions {
  /** Project id. */
  projectId: string;
  /** API token. */
  apiToken: string;
  /** `https://example.signalwire.com`, a bare host, or `http://127.0.0.1:port` (loopback, with `allowInsecure`). */
  spaceUrl: string;
  /** Allow plain http to a loopback space (development and tests against the fake). */
  allowInsecure?: boolean;
  /** Per-request timeout in milliseconds (default 10 000). */
  timeoutMs?: number;
}

/** An HTTP error answer from SignalWire, raised by our http client before the SDK sees it. */
export class SignalWireApiError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** SignalWire error code from a JSON body, when there was one. */
  readonly apiCode: number | undefined;
  /** Seconds from `Retry-After`, when sent. */
  readonly retryAfterSeconds: number | undefined;
  /** True when the error body was not JSON (a proxy page): the SDK alone would throw a SyntaxError. */
  readonly nonJson: boolean;

  constructor(status: number, apiCode: number | undefined, retryAfterSeconds: number | undefined, nonJson: boolean) {
    // Never the body text: SignalWire's messages can quote the phone number.
    super(`SignalWire answered HTTP ${status}${apiCode !== undefined ? ` (code ${apiCode})` : ''}${nonJson ? ' with a non-JSON body' : ''}`);
    this.name = 'SignalWireApiError';
    this.status = status;
    this.apiCode = apiCode;
    this.retryAfterSeconds = retryAfterSeconds;
    this.nonJson = nonJson;
  }
}

type SdkHttpClient = NonNullable<CompatibilityAPIRestClientOptions['httpClient']>;
type SdkRequest = { method: string; uri: string; username?: string; password?: string; headers?: Record<string, string>; params?: Record<string, unknown>; data?: Record<string, unknown>; timeout?: number };

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Seconds in a Retry-After header (delta-seconds or HTTP date), if any. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

function appendAll(target: URLSearchParams, values: Record<string, unknown> | undefined): void {
  for (const [k, v] of Object.entries(values ?? {})) {
    if (v === undefined || v === null) continue;
    for (const item of Array.isArray(v) ? v : [v]) target.append(k, item instanceof Date ? item.toISOString() : String(item));
  }
}

/**
 * The SDK's pluggable http client, on fetch: our timeout, plain http to a loopback fake when
 * allowed, and a typed {@link SignalWireApiError} (status, code, Retry-After) for every error answer.
 */
export function createHttpClient(options: { timeoutMs: number; insecureHost?: string }): SdkHttpClient {
  const client = {
    async request(opts: SdkRequest) {
      let uri = opts.uri;
      if (options.insecureHost && uri.startsWith(`https://${options.insecureHost}/`)) uri = 'http://' + uri.slice('https://'.length);
      const url = new URL(uri);
      appendAll(url.searchParams, opts.params);
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      delete headers.Connection;
      if (opts.username && opts.password) headers.Authorization = 'Basic ' + Buffer.from(`${opts.username}:${opts.password}`).toString('base64');
      let body: string | undefined;
      if (opts.data && opts.method !== 'GET' && opts.method !== 'DELETE') {
        const form = new URLSearchParams();
        appendAll(form, opts.data);
        body = form.toString();
        headers['Content-Type'] = 'application/x-www-form-urlencoded';
      }
      const res = await fetch(url, { method: opts.method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(opts.timeout ?? options.timeoutMs) });
      const text = await res.text();
      let parsed: unknown = text;
      let isJson = false;
      if (text !== '') {
        try {
          parsed = JSON.parse(text);
          isJson = true;
        } catch {
          isJson = false;
        }
      }
      if (res.status >= 400) {
        const code = isJson && typeof (parsed as { code?: unknown }).code === 'number' ? (parsed as { code: number }).code : undefined;
        throw new SignalWireApiError(res.status, code, parseRetryAfter(res.headers.get('retry-after')), !isJson);
      }
      return { statusCode: res.status, body: parsed, headers: Object.fromEntries(res.headers) };
    },
  };
  return client as unknown as SdkHttpClient;
}

/** Creates the SDK client for the space, with our http client injected (timeouts, errors, plain http to a loopback fake). */
export function createSignalWireClient(options: SignalWireClientOptions): SignalWireApi {
  const raw = options.spaceUrl.includes('://') ? options.spaceUrl : `https://${options.spaceUrl}`;
  const url = new URL(raw);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError('SignalWire space URL: expected an https URL or a host name');
  const insecure = url.protocol === 'http:';
  if (insecure && !(options.allowInsecure && LOOPBACK.has(url.hostname))) {
    throw new TypeError('SignalWire space URL: plain http is allowed only to a loopback host with SIGNALWIRE_ALLOW_INSECURE');
  }
  const httpClient = createHttpClient({ timeoutMs: options.timeoutMs ?? 10_000, ...(insecure ? { insecureHost: url.host } : {}) });
  return RestClient(options.projectId, options.apiToken, { signalwireSpaceUrl: url.host, httpClient });
}

/** How a failed SignalWire call should be handled. */
export type FailureKind = 'transient' | 'not-found' | 'in-progress' | 'rejected';

/** A failure, classified. */
export interface Classified {
  /** What to do about it. */
  kind: FailureKind;
  /** HTTP status, when known. */
  status?: number;
  /** SignalWire error code, when known. */
  apiCode?: number;
  /** Seconds the server asked us to wait. */
  retryAfterSeconds?: number;
}

/** SignalWire/Twilio code for "the message is still in progress" (redact or delete refused). */
export const IN_PROGRESS_CODE = 20009;

/**
 * Classifies an error thrown by an SDK call: 429/5xx, timeouts, network errors and the SDK's own
 * SyntaxError on a non-JSON error body are transient; 404 is not-found; code 20009 is in-progress.
 */
export function classifySignalWireError(err: unknown): Classified {
  if (err instanceof SignalWireApiError) return classifyStatus(err.status, err.apiCode, err.retryAfterSeconds);
  // The SDK's RestException (if its default client is used) carries status and code but no headers.
  if (err instanceof Error && typeof (err as unknown as { status?: unknown }).status === 'number') {
    const code = (err as { code?: unknown }).code;
    return classifyStatus((err as unknown as { status: number }).status, typeof code === 'number' ? code : undefined, undefined);
  }
  // The SDK JSON.parses error bodies: a proxy's HTML page becomes a SyntaxError with no status.
  if (err instanceof SyntaxError) return { kind: 'transient' };
  return { kind: 'transient' };
}

function classifyStatus(status: number, apiCode: number | undefined, retryAfterSeconds: number | undefined): Classified {
  const base = { status, ...(apiCode !== undefined ? { apiCode } : {}), ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) };
  if (status === 429 || status === 408 || status >= 500) return { kind: 'transient', ...base };
  if (status === 404) return { kind: 'not-found', ...base };
  if (apiCode === IN_PROGRESS_CODE) return { kind: 'in-progress', ...base };
  return { kind: 'rejected', ...base };
}

/** Options for {@link withRetry}. */
export interface RetryOptions {
  /** Attempts in all, the first included (default 4). */
  attempts?: number;
  /** First backoff in ms (default 250), doubled each time, with full jitter. */
  baseDelayMs?: number;
  /** Longest backoff in ms (default 4 000). */
  maxDelayMs?: number;
  /** A Retry-After longer than this is not slept here: the error goes to the caller to re-delay (default 5 000). */
  maxRetryAfterMs?: number;
  /** Stops retrying when aborted. */
  signal?: AbortSignal;
  /** Logger for retry lines (never bodies or numbers). */
  logger?: Logger;
  /** Random source in [0,1), for tests. */
  random?: () => number;
  /** Narrows which transient failures are retried (e.g. a create retries only what surely was not accepted). */
  retryOn?: (failure: Classified) => boolean;
}

/**
 * Runs `fn`, retrying transient SignalWire failures (429 honouring Retry-After, 5xx, timeouts,
 * non-JSON error bodies) with exponential backoff and full jitter; other failures are thrown at once.
 */
export async function withRetry<T>(op: string, fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 4;
  const base = options.baseDelayMs ?? 250;
  const max = options.maxDelayMs ?? 4_000;
  const maxRetryAfter = options.maxRetryAfterMs ?? 5_000;
  const log = options.logger ?? silentLogger;
  const random = options.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const c = classifySignalWireError(err);
      if (c.kind !== 'transient' || (options.retryOn && !options.retryOn(c)) || attempt >= attempts || options.signal?.aborted) throw err;
      const backoff = Math.round(random() * Math.min(max, base * 2 ** (attempt - 1)));
      const asked = c.retryAfterSeconds !== undefined ? c.retryAfterSeconds * 1000 : 0;
      if (asked > maxRetryAfter) throw err;
      const wait = Math.max(asked, backoff);
      log.warn({ op, status: c.status, apiCode: c.apiCode, attempt, waitMs: wait }, 'signalwire call failed, retrying');
      await delay(wait, undefined, options.signal ? { signal: options.signal } : {}).catch(() => {
        throw err;
      });
    }
  }
}
