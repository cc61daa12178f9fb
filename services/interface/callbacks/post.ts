import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { WebhookHeaders } from './sign.ts';

/** How one callback attempt ended: the partner's status, or why there was none. */
export type CallbackAttempt = { kind: 'answered'; status: number } | { kind: 'failed'; reason: string };

/** Options for {@link createCallbackPoster}. */
export interface CallbackPosterOptions {
  /** PARTNER_CALLBACK_TIMEOUT_MS: the whole attempt, connect to status line. */
  timeoutMs: number;
  /** Extra CA certificates (PEM) callback servers may chain to, besides the system's. */
  ca?: string | Buffer;
}

/** POSTs one signed callback; never throws. */
export type CallbackPoster = (url: URL, headers: WebhookHeaders, body: string, signal: AbortSignal) => Promise<CallbackAttempt>;

function reasonOf(err: unknown): string {
  const code = (err as { code?: unknown }).code;
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
      const req: ClientRequest =
        url.protocol === 'https:'
          ? httpsRequest(url, { ...common, minVersion: 'TLSv1.2', ...(ca ? { ca } : {}) }, onResponse)
          : httpRequest(url, common, onResponse);
      req.on('error', (err) => finish({ kind: 'failed', reason: reasonOf(err) }));
      req.end(body);
    });
}
