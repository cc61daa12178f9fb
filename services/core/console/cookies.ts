import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Cookie of the console session (the `__Host-` prefix when Secure: no Domain, Path=/, HTTPS only). */
export const SESSION_COOKIE = { secure: '__Host-cr_console', plain: 'cr_console' } as const;
/** Cookie of the sign-in form's CSRF token (double submit: the form must carry the same value). */
export const LOGIN_COOKIE = { secure: '__Host-cr_console_login', plain: 'cr_console_login' } as const;

/** The request's cookies by name (first value wins). */
export function readCookies(request: FastifyRequest): Map<string, string> {
  const out = new Map<string, string>();
  const header = request.headers.cookie;
  if (typeof header !== 'string') return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || (isIP(a) === 4 && a.startsWith('127.'));
}

function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || isLoopbackAddress(name);
}

/**
 * Whether the console's cookies get `Secure`: always, except for plain HTTP on loopback (the
 * operator's own machine, `npm start`), where a Secure cookie would never come back. Over
 * plain HTTP from anywhere else the cookie is Secure and so never returned: sign-in fails
 * closed rather than sending a session over an unencrypted network.
 */
export function secureCookies(request: FastifyRequest): boolean {
  if (request.protocol === 'https') return true;
  return !(isLoopbackAddress(request.socket.remoteAddress) && isLoopbackHost(request.headers.host));
}

/** Sets a console cookie: HttpOnly, SameSite=Strict, Path=/, Secure outside loopback; `maxAgeSeconds` 0 deletes it. */
export function setCookie(request: FastifyRequest, reply: FastifyReply, names: { secure: string; plain: string }, value: string, maxAgeSeconds: number): void {
  const secure = secureCookies(request);
  const attrs = [`${secure ? names.secure : names.plain}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAgeSeconds}`];
  if (secure) attrs.push('Secure');
  const previous = reply.getHeader('set-cookie');
  const list = previous === undefined ? [] : Array.isArray(previous) ? previous.map(String) : [String(previous)];
  reply.header('set-cookie', [...list, attrs.join('; ')]);
}

/** The value of a console cookie under the name this request's transport uses. */
export function getCookie(request: FastifyRequest, names: { secure: string; plain: string }): string | undefined {
  return readCookies(request).get(secureCookies(request) ? names.secure : names.plain);
}
