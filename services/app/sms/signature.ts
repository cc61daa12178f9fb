import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Form parameters of a callback: one value, or several for a repeated name. */
export type CallbackParams = Record<string, string | string[]>;

/** Base64 HMAC-SHA1 with the Signing Key over the URL then each sorted name+value (empty values included). */
export function computeSignature(signingKey: string, url: string, params: CallbackParams): string {
  let data = url;
  for (const name of Object.keys(params).sort()) {
    const value = params[name]!;
    for (const v of Array.isArray(value) ? value : [value]) data += name + v;
  }
  return createHmac('sha1', signingKey).update(Buffer.from(data, 'utf8')).digest('base64');
}

/** Constant-time string equality (lengths hidden by hashing first). */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

/**
 * The URLs a signature may have been computed over: the exact public URL and, as the SDK's own
 * validator accepts, the same URL with the default port written out or removed.
 */
export function signatureUrls(url: string): string[] {
  const out = new Set([url]);
  const u = new URL(url);
  if (u.port === '') {
    const port = u.protocol === 'https:' ? '443' : '80';
    out.add(`${u.protocol}//${u.host}:${port}${u.pathname}${u.search}`);
  } else if ((u.protocol === 'https:' && u.port === '443') || (u.protocol === 'http:' && u.port === '80')) {
    out.add(`${u.protocol}//${u.hostname}${u.pathname}${u.search}`);
  }
  return [...out];
}

/** True when `header` is a valid signature of the request for one of the URL forms. */
export function verifySignature(signingKey: string, header: string | undefined, url: string, params: CallbackParams): boolean {
  if (!header) return false;
  let ok = false;
  // Every candidate is checked, so the time does not say which one matched.
  for (const candidate of signatureUrls(url)) ok = safeEqual(header, computeSignature(signingKey, candidate, params)) || ok;
  return ok;
}
