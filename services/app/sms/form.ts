import type { CallbackParams } from './signature.ts';

/**
 * Parses an `application/x-www-form-urlencoded` callback body into a null-prototype map: every
 * name as sent (`__proto__`, `constructor` and `toString` are ordinary names here, never inherited
 * members), a repeated name as its values in the order sent, empty values kept. The signature is
 * then checked over exactly what was sent.
 */
export function parseForm(text: string): CallbackParams {
  const out = Object.create(null) as CallbackParams;
  for (const [name, value] of new URLSearchParams(text)) {
    const prev = Object.hasOwn(out, name) ? out[name] : undefined;
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

/** The first value of a form parameter (own entries only). */
export function formValue(params: CallbackParams, name: string): string | undefined {
  if (!Object.hasOwn(params, name)) return undefined;
  const value = params[name];
  return Array.isArray(value) ? value[0] : value;
}
