import { readFileSync } from 'node:fs';
import formbody from '@fastify/formbody';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditEvent, AuditSink } from '../audit/types.ts';
import type { TokenEntry, TokenStore } from '../http/auth.ts';
import type { AuthFailureLimiter } from '../http/authFailures.ts';
import { httpErrors } from '../http/errors.ts';
import { getCookie, LOGIN_COOKIE, SESSION_COOKIE, setCookie } from './cookies.ts';
import { ConsoleError } from './errors.ts';
import { page, type Html, type PageFrame } from './html.ts';
import { buildOverview, type OverviewSources } from './overview.ts';
import { auditBody, emergencyConfirmBody, loginBody, overviewBody } from './pages.ts';
import { randomToken, sameToken, type ConsoleSession, type ConsoleSessions } from './sessions.ts';
import { tailAuditTrail, type TrailVerification } from './trail.ts';

/** Content-Security-Policy of every console answer: own files only, no inline script or style, no framing. */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** Extra console pages (the DLQ and quarantine pages) registered inside the console's session scope. */
export type ConsolePages = FastifyPluginAsync<ConsolePageContext>;

/** What an extra console page gets: rendering, the session and auditing. */
export interface ConsolePageContext {
  /** Renders a whole page for the signed-in admin. */
  render(request: FastifyRequest, frame: Pick<PageFrame, 'title' | 'nav'>, body: Html): string;
  /** The request's session (set for every route of the scope). */
  session(request: FastifyRequest): ConsoleSession;
  /** Records an audit event with the session's actor and the source address. */
  audit(request: FastifyRequest, event: Omit<AuditEvent, 'actor' | 'sourceIp'>): Promise<void>;
}

/** Options for {@link consolePlugin}. */
export interface ConsolePluginOptions {
  /** Service name. */
  service: string;
  /** Admin credentials: tokens with role `admin` may sign in. */
  tokens: TokenStore<TokenEntry>;
  /** The audit trail. */
  audit: AuditSink;
  /** The trail file (the audit page reads its end). */
  auditFile: string;
  /** The service's failed-authentication limiter: failed sign-ins count like failed API calls. */
  failures: AuthFailureLimiter;
  /** Session store. */
  sessions: ConsoleSessions;
  /** Idle logoff, seconds (shown to console.js, which leaves the page once the server says the session ended). */
  idleSeconds: number;
  /** Absolute session lifetime, seconds (the cookie's Max-Age). */
  maxSeconds: number;
  /** What the overview reads. */
  overview: OverviewSources;
  /** Verifies the trail now and remembers the result. */
  verifyTrail: () => Promise<TrailVerification>;
  /** DLQ and quarantine pages, when the service has them. */
  queuePages?: ConsolePages | undefined;
}

const ASSETS = new URL('./assets/', import.meta.url);
const asset = (name: string): string => readFileSync(new URL(name, ASSETS), 'utf8');

declare module 'fastify' {
  interface FastifyRequest {
    /** The console session of a signed-in request (console routes only). */
    consoleSession?: ConsoleSession;
  }
}

/**
 * The operator console at /console: sign-in with an admin token into a server-side session
 * (HttpOnly SameSite=Strict cookie, Secure outside loopback, idle logoff and a lifetime),
 * CSRF tokens on every form, a strict CSP, own assets only; every page view and action audited.
 */
export const consolePlugin: FastifyPluginAsync<ConsolePluginOptions> = async (app, options) => {
  const { service, audit, sessions } = options;
  const css = asset('console.css');
  const js = asset('console.js');
  await app.register(formbody, { bodyLimit: 16 * 1024 });

  app.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', CONSOLE_CSP);
    reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
    // Not `no-referrer` (helmet's default): with it a browser sends `Origin: null` on the console's
    // own form posts, and the origin check could not tell them from a forged cross-site post.
    reply.header('referrer-policy', 'same-origin');
  });

  const record = (request: FastifyRequest, actor: string, event: Omit<AuditEvent, 'actor' | 'sourceIp'>): Promise<void> =>
    audit.record({ ...event, actor, sourceIp: request.ip });
  const sessionId = (request: FastifyRequest): string | undefined => getCookie(request, SESSION_COOKIE);
  const render = (request: FastifyRequest, frame: Pick<PageFrame, 'title' | 'nav'>, body: Html): string =>
    page({ ...frame, service, actor: request.consoleSession!.actor, csrf: request.consoleSession!.csrf, idleSeconds: options.idleSeconds }, body);
  const html = (reply: FastifyReply, markup: string, status = 200): FastifyReply => reply.code(status).type('text/html; charset=utf-8').send(markup);

  // A state-changing request must come from the console itself: same origin (when the browser says), and the session's token.
  const checkOrigin = (request: FastifyRequest): void => {
    const site = request.headers['sec-fetch-site'];
    const origin = request.headers.origin;
    const own = `${request.protocol}://${request.headers.host ?? ''}`;
    if ((typeof site === 'string' && site !== 'same-origin' && site !== 'none') || (typeof origin === 'string' && origin !== own && origin !== app.publicBaseUrl)) {
      throw new ConsoleError('CR_CONSOLE_CSRF', 'console form refused: not sent from the console itself');
    }
  };
  const field = (request: FastifyRequest, name: string): string | undefined => {
    const v = (request.body as Record<string, unknown> | undefined)?.[name];
    return typeof v === 'string' ? v : undefined;
  };

  const signInPage = async (request: FastifyRequest, reply: FastifyReply, notice: Parameters<typeof loginBody>[1], status = 200): Promise<FastifyReply> => {
    const csrf = randomToken();
    setCookie(request, reply, LOGIN_COOKIE, csrf, 600);
    return html(reply, page({ service, title: 'Sign in' }, loginBody(csrf, notice)), status);
  };

  app.get('/console/assets/console.css', { config: { public: true } }, async (_request, reply) => reply.type('text/css; charset=utf-8').send(css));
  app.get('/console/assets/console.js', { config: { public: true } }, async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(js));

  app.get<{ Querystring: { ended?: string } }>('/console/login', { config: { public: true } }, async (request, reply) => {
    const ended = request.query.ended;
    const notice = ended === 'idle' ? 'You were signed out after being idle.' : ended === 'expired' ? 'Your session reached its time limit.' : ended === 'out' ? 'Signed out.' : undefined;
    return signInPage(request, reply, notice ? { kind: 'info', text: notice } : undefined);
  });

  app.post('/console/login', { config: { public: true } }, async (request, reply) => {
    checkOrigin(request);
    const resourceId = 'POST /console/login';
    const retryAfter = options.failures.refuse(request.ip);
    if (retryAfter > 0) throw httpErrors.rateLimited(retryAfter);
    if (!sameToken(field(request, '_csrf'), getCookie(request, LOGIN_COOKIE))) {
      throw new ConsoleError('CR_CONSOLE_CSRF', 'sign-in form refused: reload the sign-in page');
    }
    const token = field(request, 'token');
    const entry = token ? options.tokens.lookup(token) : undefined;
    if (!entry || !entry.roles.includes('admin')) {
      const reason = !token ? 'missing' : entry ? 'not-admin' : 'invalid';
      await options.failures.fail(request.ip, { actor: entry?.name ?? 'anonymous', resourceType: 'console', resourceId, reason });
      return signInPage(request, reply, { kind: 'error', text: 'Sign-in failed: that is not an admin token of this service.' }, 401);
    }
    const { id } = await sessions.create(entry.name);
    await record(request, entry.name, { action: 'auth.success', resourceType: 'console', resourceId, outcome: 'success' });
    setCookie(request, reply, SESSION_COOKIE, id, options.maxSeconds);
    setCookie(request, reply, LOGIN_COOKIE, '', 0);
    return reply.redirect('/console', 303);
  });

  // Whether the session is still alive, without counting as activity (console.js asks, to leave an idle page).
  app.get('/console/api/session', { config: { public: true } }, async (request) => {
    const found = await sessions.get(sessionId(request), false);
    if ('ended' in found) {
      if (found.actor) await record(request, found.actor, { action: 'console.signed-out', resourceType: 'console', resourceId: service, outcome: 'success', details: { reason: found.ended } });
      throw new ConsoleError('CR_CONSOLE_SIGNED_OUT', `console session ended (${found.ended}): sign in again`);
    }
    return { active: true, idleSeconds: options.idleSeconds, lastSeen: new Date(found.session.lastSeen).toISOString() };
  });

  // Everything below needs a live session; each request is activity (restarts the idle clock).
  await app.register(async (signedIn) => {
    signedIn.addHook('onRequest', async (request, reply) => {
      const found = await sessions.get(sessionId(request), true);
      if ('ended' in found) {
        if (found.actor) await record(request, found.actor, { action: 'console.signed-out', resourceType: 'console', resourceId: service, outcome: 'success', details: { reason: found.ended } });
        if (request.method === 'GET' && !request.url.startsWith('/console/api/')) {
          return reply.redirect(found.ended === 'missing' ? '/console/login' : `/console/login?ended=${found.ended}`, 303);
        }
        throw new ConsoleError('CR_CONSOLE_SIGNED_OUT', `console session ended (${found.ended}): sign in again`);
      }
      request.consoleSession = found.session;
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        checkOrigin(request);
      }
    });
    signedIn.addHook('preHandler', async (request) => {
      if (request.method !== 'GET' && request.method !== 'HEAD' && !sameToken(field(request, '_csrf'), request.consoleSession!.csrf)) {
        throw new ConsoleError('CR_CONSOLE_CSRF', 'console form refused: missing or wrong CSRF token; reload the page');
      }
    });
    // Every page view and every form post (a dry run included) leaves a line, written before the
    // answer leaves (onSend), so a page is never shown unaudited; the actions add their own lines.
    signedIn.addHook('onSend', async (request, reply, payload) => {
      await record(request, request.consoleSession?.actor ?? 'unknown', {
        action: request.method === 'GET' || request.method === 'HEAD' ? 'console.viewed' : 'console.action',
        resourceType: 'console',
        resourceId: request.routeOptions.url ?? 'unmatched',
        outcome: reply.statusCode < 400 ? 'success' : 'failure',
        details: { status: reply.statusCode },
      }).catch((err: unknown) => request.log.error({ code: (err as { code?: string }).code }, 'console page view not audited'));
      return payload;
    });

    signedIn.get('/console', { config: { public: true } }, async (request, reply) => {
      const overview = await buildOverview(options.overview);
      return html(reply, render(request, { title: 'Overview', nav: 'overview' }, overviewBody(overview, options.overview.sampler.samples, request.consoleSession!.csrf)));
    });
    signedIn.get('/console/api/overview', { config: { public: true } }, async () => buildOverview(options.overview));

    signedIn.get<{ Querystring: { to?: string } }>('/console/emergency', { config: { public: true } }, async (request, reply) => {
      const to = request.query.to === 'on' ? 'on' : request.query.to === 'off' ? 'off' : undefined;
      if (!to) return reply.redirect('/console', 303);
      return html(reply, render(request, { title: 'Emergency mode', nav: 'overview' }, emergencyConfirmBody(to, request.consoleSession!.csrf, service)));
    });
    signedIn.post('/console/emergency', { config: { public: true } }, async (request, reply) => {
      const to = field(request, 'to');
      if ((to !== 'on' && to !== 'off') || field(request, 'confirm') !== 'yes') {
        throw new ConsoleError('CR_CONSOLE_CONFIRMATION_REQUIRED', 'switching emergency mode needs to=on|off and confirm=yes');
      }
      const actor = request.consoleSession!.actor;
      await options.overview.emergency.set(to === 'on', { actor, sourceIp: request.ip });
      request.log.warn({ active: to === 'on', actor }, 'emergency mode changed from the console');
      return reply.redirect('/console', 303);
    });

    signedIn.post('/console/audit/verify', { config: { public: true } }, async (request, reply) => {
      const result = await options.verifyTrail();
      await record(request, request.consoleSession!.actor, { action: 'audit.verified', resourceType: 'audit-trail', resourceId: service, outcome: result.ok ? 'success' : 'failure' });
      return reply.redirect('/console', 303);
    });

    signedIn.get('/console/audit', { config: { public: true } }, async (request, reply) => {
      const entries = await tailAuditTrail(options.auditFile, 200);
      return html(reply, render(request, { title: 'Audit trail', nav: 'audit' }, auditBody(entries)));
    });

    signedIn.post('/console/logout', { config: { public: true } }, async (request, reply) => {
      await sessions.end(sessionId(request) ?? '');
      await record(request, request.consoleSession!.actor, { action: 'console.signed-out', resourceType: 'console', resourceId: service, outcome: 'success', details: { reason: 'sign-out' } });
      setCookie(request, reply, SESSION_COOKIE, '', 0);
      return reply.redirect('/console/login?ended=out', 303);
    });

    if (options.queuePages) {
      await signedIn.register(options.queuePages, {
        render,
        session: (request) => request.consoleSession!,
        audit: (request, event) => record(request, request.consoleSession!.actor, event),
      });
    }
  });
};
