import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

/** A signed-in console session as a browser would hold it (through `inject()`). */
export interface ConsoleClient {
  /** The Cookie header to send. */
  cookie: string;
  /** The session's CSRF token (from the pages' forms). */
  csrf: string;
}

/** The `name=value` of each Set-Cookie of a response. */
export function cookiesOf(res: LightMyRequestResponse): Map<string, { value: string; header: string }> {
  const raw = res.headers['set-cookie'];
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  const out = new Map<string, { value: string; header: string }>();
  for (const header of list) {
    const [pair] = header.split(';');
    const eq = pair!.indexOf('=');
    out.set(pair!.slice(0, eq), { value: pair!.slice(eq + 1), header });
  }
  return out;
}

/** The value of the hidden `_csrf` field of the first form of a page. */
export function csrfOf(body: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(body);
  if (!m) throw new Error('no CSRF field on the page');
  return m[1]!;
}

/** Opens the sign-in page: its login cookie and the form's token. */
export async function openSignIn(server: FastifyInstance): Promise<{ cookie: string; csrf: string }> {
  const res = await server.inject({ method: 'GET', url: '/console/login' });
  const login = cookiesOf(res).get('cr_console_login');
  if (!login) throw new Error(`no login cookie (status ${res.statusCode})`);
  return { cookie: `cr_console_login=${login.value}`, csrf: csrfOf(res.body) };
}

/** Posts the sign-in form with `token`; the raw answer. */
export async function postSignIn(server: FastifyInstance, token: string, form?: { cookie: string; csrf: string }): Promise<LightMyRequestResponse> {
  const f = form ?? (await openSignIn(server));
  return server.inject({
    method: 'POST',
    url: '/console/login',
    headers: { cookie: f.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ _csrf: f.csrf, token }).toString(),
  });
}

/** Signs in with an admin token and reads the session's CSRF token from the overview. */
export async function signIn(server: FastifyInstance, token: string): Promise<ConsoleClient> {
  const res = await postSignIn(server, token);
  const session = cookiesOf(res).get('cr_console');
  if (res.statusCode !== 303 || !session) throw new Error(`sign-in failed: ${res.statusCode}`);
  const cookie = `cr_console=${session.value}`;
  const page = await server.inject({ method: 'GET', url: '/console', headers: { cookie } });
  return { cookie, csrf: csrfOf(page.body) };
}

/** Posts a console form as the signed-in admin. */
export function postForm(server: FastifyInstance, client: ConsoleClient, url: string, fields: Record<string, string>): Promise<LightMyRequestResponse> {
  return server.inject({
    method: 'POST',
    url,
    headers: { cookie: client.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ _csrf: client.csrf, ...fields }).toString(),
  });
}
