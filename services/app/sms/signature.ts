import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Form parameters of a callback: one value, or several for a repeated name. */
export type CallbackParams = Record<string, string | string[]>;

/** Basic Auth credentials the callback URL carries. */
export interface UrlCredentials {
  /** User name. */
  user: string;
  /** Password. */
  password: string;
}

/** Base64 HMAC-SHA1 with the Signing Key over the URL then each sorted name+value (empty values included). */
export function computeSignature(signingKey: string, url: string, params: CallbackParams): string {
  let data = url;
  // Own names only, in code-unit order as the SDK sorts them; params is a null-prototype map.
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

/** `user:password@` as the status callback URL writes it (the URL setters' percent-encoding of encodeURIComponent). */
export function userinfoOf(credentials: UrlCredentials): string {
  const u = new URL('https://host.invalid/');
  u.username = encodeURIComponent(credentials.user);
  u.password = encodeURIComponent(credentials.password);
  return `${u.username}:${u.password}@`;
}

/**
 * The URLs a signature may have been computed over: the exact public URL and, as the SDK's own
 * validator accepts, the same URL as a URL parser writes it (host lower-cased, the default port left
 * out) and with the default port written out; and, when the
 * callback URL carries Basic Auth credentials, each of those with the credentials in it (the
 * SDK validates over whatever URL it is given, so a signer may have used either form).
 */
export function signatureUrls(url: string, credentials?: UrlCredentials): string[] {
  const forms = new Set([url]);
  const u = new URL(url);
  const rest = `${u.pathname}${u.search}`;
  // The parser leaves a default port out (u.port is then empty), whether or not `url` wrote it.
  forms.add(`${u.protocol}//${u.host}${rest}`);
  if (u.port === '') forms.add(`${u.protocol}//${u.host}:${u.protocol === 'https:' ? '443' : '80'}${rest}`);
  if (!credentials) return [...forms];
  const userinfo = userinfoOf(credentials);
  return [...forms].flatMap((form) => [form, form.replace(/^([a-z]+:\/\/)/, `$1${userinfo}`)]);
}

/** The request's signature: `X-SignalWire-Signature`, else its documented alias `X-Twilio-Signature`. */
export function signatureHeader(headers: Record<string, string | string[] | undefined>): string | undefined {
  const value = headers['x-signalwire-signature'] ?? headers['x-twilio-signature'];
  return typeof value === 'string' ? value : undefined;
}

/** True when `header` is a valid signature of the request for one of the URL forms. */
export function verifySignature(signingKey: string, header: string | undefined, url: string, params: CallbackParams, credentials?: UrlCredentials): boolean {
  if (!header) return false;
  let ok = false;
  // Every candidate is checked, so the time does not say which one matched.
  for (const candidate of signatureUrls(url, credentials)) ok = safeEqual(header, computeSignature(signingKey, candidate, params)) || ok;
  return ok;
}
