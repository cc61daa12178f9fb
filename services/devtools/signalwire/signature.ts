import { createHmac } from 'node:crypto';

/** Form parameters as SignalWire posts them: a name maps to one value or, when repeated, to several. */
export type FormParams = Record<string, string | string[]>;

/**
 * The X-SignalWire-Signature value: base64 HMAC-SHA1, keyed with the Signing Key, over the URL
 * followed by every parameter name and value, names sorted (values of a repeated name in order).
 */
export function signCallback(signingKey: string, url: string, params: FormParams): string {
  let data = url;
  for (const name of Object.keys(params).sort()) {
    const value = params[name]!;
    for (const v of Array.isArray(value) ? value : [value]) data += name + v;
  }
  return createHmac('sha1', signingKey).update(Buffer.from(data, 'utf8')).digest('base64');
}
