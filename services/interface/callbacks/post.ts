import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { rootCertificates } from 'node:tls';
import type { WebhookHeaders } from './sign.ts';
import { isInternalAddress } from './target.ts';

/** How one callback attempt ended: the partner's status, or why there was none. */
export type CallbackAttempt = { kind: 'answered'; status: number } | { kind: 'failed'; reason: string };

/** Options for {@link createCallbackPoster}. */
export interface CallbackPosterOptions {
  /** PARTNER_CALLBACK_TIMEOUT_MS: the whole attempt, connect to status line. */
  timeoutMs: number;
  /** Extra CA certificates (PEM) callback servers may chain to, besides the system's. */
  ca?: string | Buffer;
  /** PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS: an https callback may connect to an internal address. */
  allowPrivate?: boolean;
}

const REFUSED = 'CR_CALLBACK_ADDRESS_REFUSED';
const INTERNAL_CODE = 'ECALLBACKINTERNAL';

/**
 * The name's addresses without the internal ones ({@link isInternalAddress}): the address the
 * connection is made to is checked, so a name that resolves (or is rebound) to this machine, its
 * network or the cloud metadata service is refused however it was written in the partners file.
 */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err, '', 0);
    const usable = addresses.filter((a) => !isInternalAddress(a.address));
    if (usable.length === 0) return callback(Object.assign(new Error('the callback host resolves only to internal addresses'), { code: INTERNAL_CODE }), '', 0);
    if (options.all) return (callback as unknown as (e: null, all: LookupAddress[]) => void)(null, usable);
    return callback(null, usable[0]!.address, usable[0]!.family);
  });
};

/** POSTs one signed callback; never throws. */
export type CallbackPoster = (url: URL, headers: WebhookHeaders, body: string, signal: AbortSignal) => Promise<CallbackAttempt>;

function reasonOf(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (code === INTERNAL_CODE) return REFUSED;
  return `CR_CALLBACK_UNREACHABLE_${String(typeof code === 'string' ? code : 'ERROR').replace(/[^A-Z0-9_]/gi, '').toUpperCase()}`.slice(0, 64);
}

/**
 * The callback client: one POST per attempt, TLS 1.2 or later, no redirect followed (a 3xx is an
 * answer like any other), no connection reuse, the answer's body drained unread (it is the
 * partner's business and never reaches a log). The timeout covers the whole attempt.
 */
export function createCallbackPoster(options: CallbackPosterOptions): CallbackPoster {
  const ca = options.ca ? [...rootCertificates, options.ca.toString()] : undefined;
  return (url, headers, body, signal) =>
    new Promise<CallbackAttempt>((resolve) => {
      if (signal.aborted) return resolve({ kind: 'failed', reason: 'CR_CALLBACK_TIMEOUT' });
      // An address written in the URL is not looked up: checked here, as the lookup checks a name's.
      const guarded = url.protocol === 'https:' && options.allowPrivate !== true;
      const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
      if (guarded && isIP(literal) && isInternalAddress(literal)) return resolve({ kind: 'failed', reason: REFUSED });
      let settled = false;
      const finish = (attempt: CallbackAttempt): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        req.destroy();
        resolve(attempt);
      };
      const timer = setTimeout(() => finish({ kind: 'failed', reason: 'CR_CALLBACK_TIMEOUT' }), options.timeoutMs);
      const onAbort = (): void => finish({ kind: 'failed', reason: 'CR_CALLBACK_TIMEOUT' });
      signal.addEventListener('abort', onAbort, { once: true });
      const onResponse = (res: IncomingMessage): void => {
        res.on('error', () => undefined);
        res.resume();
        finish({ kind: 'answered', status: res.statusCode ?? 0 });
      };
      const common = {
        method: 'POST',
        agent: false as const,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': 'care-relay-callbacks/1' },
      };
      // Plain http goes only to loopback, in development (PARTNER_CALLBACK_ALLOW_INSECURE, checked at load).
      const req: ClientRequest =
        url.protocol === 'https:'
          ? httpsRequest(url, { ...common, minVersion: 'TLSv1.2', ...(ca ? { ca } : {}), ...(guarded ? { lookup: publicOnlyLookup } : {}) }, onResponse)
          : httpRequest(url, common, onResponse);
      req.on('error', (err) => finish({ kind: 'failed', reason: reasonOf(err) }));
      req.end(body);
    });
}
