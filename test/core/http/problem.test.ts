import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { RelayError } from '../../../services/core/errors/relayError.ts';
import { HTTP_ERRORS, httpErrors, rateLimitErrorResponseBuilder } from '../../../services/core/http/problem.ts';
import { createHttpServer } from '../../../services/core/http/server.ts';
import { captureLogger } from './helpers.ts';

const PHI = 'Jane-Doe-1970';
let app: FastifyInstance;
let logs: ReturnType<typeof captureLogger>;

function build(bodyLimit = 1024): FastifyInstance {
  logs = captureLogger();
  app = createHttpServer({ logger: logs.logger, bodyLimit });
  const schema = {
    body: {
      type: 'object',
      required: ['patient', 'kind'],
      properties: {
        patient: { type: 'object', properties: { name: { type: 'string', maxLength: 5 } } },
        kind: { type: 'string', enum: ['a', 'b'] },
      },
    },
  };
  app.post('/v1/things', { schema }, async () => ({ ok: true }));
  app.get('/boom', async () => {
    throw new Error(`database said: patient ${PHI} password=hunter2`);
  });
  app.get('/syntax', async () => JSON.parse(`{"name":"${PHI}`) as unknown);
  app.get('/internal-relay', async () => {
    throw new RelayError('CR_SOMETHING_INTERNAL', 'internal detail that has no status');
  });
  app.get('/emergency', async () => {
    throw httpErrors.emergency();
  });
  app.get('/unavailable', async () => {
    throw httpErrors.unavailable(7);
  });
  app.get('/missing', async () => {
    throw httpErrors.authMissing();
  });
  app.get('/custom', async () => {
    throw new RelayError('CR_ENVELOPE_DIGEST_MISMATCH', 'digest does not match', { status: 422, details: { retryAfter: 3 } });
  });
  return app;
}

afterEach(async () => {
  await app.close();
});

function problem(res: { headers: Record<string, unknown>; body: string }) {
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json(; charset=utf-8)?$/);
  return JSON.parse(res.body) as Record<string, unknown>;
}

describe('problem handler', () => {
  it('renders a RelayError with its stable type, title, detail and headers', async () => {
    build();
    const res = await app.inject('/unavailable');
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('7');
    expect(problem(res)).toEqual({
      type: 'https://care-relay.dev/problems/http-unavailable',
      title: 'Service unavailable',
      status: 503,
      detail: 'The service is temporarily unavailable; retry later.',
      code: 'CR_HTTP_UNAVAILABLE',
    });
    const em = await app.inject('/emergency');
    expect(em.statusCode).toBe(503);
    expect(em.headers['retry-after']).toBe('300');
    expect(problem(em)).toMatchObject({ type: 'https://care-relay.dev/problems/emergency-mode', code: 'CR_EMERGENCY_MODE' });
    const auth = await app.inject('/missing');
    expect(auth.statusCode).toBe(401);
    expect(auth.headers['www-authenticate']).toBe('Bearer realm="care-relay"');
    expect(problem(auth)).toMatchObject({ type: 'https://care-relay.dev/problems/auth-missing', code: 'CR_AUTH_MISSING' });
  });

  it('renders any public RelayError, its details as extension members and retryAfter as Retry-After', async () => {
    build();
    const res = await app.inject('/custom');
    expect(res.statusCode).toBe(422);
    expect(res.headers['retry-after']).toBe('3');
    expect(problem(res)).toEqual({
      type: 'https://care-relay.dev/problems/envelope-digest-mismatch',
      title: 'Unprocessable Entity',
      status: 422,
      detail: 'digest does not match',
      code: 'CR_ENVELOPE_DIGEST_MISMATCH',
      retryAfter: 3,
    });
  });

  it('maps a validation failure to 400 CR_HTTP_VALIDATION without echoing values', async () => {
    build();
    const res = await app.inject({ method: 'POST', url: '/v1/things', payload: { patient: { name: PHI }, kind: 'a' } });
    expect(res.statusCode).toBe(400);
    const doc = problem(res);
    expect(doc).toMatchObject({ code: 'CR_HTTP_VALIDATION', type: 'https://care-relay.dev/problems/http-validation' });
    expect(doc.detail).toBe('body.patient.name must NOT have more than 5 characters');
    const bad = await app.inject({ method: 'POST', url: '/v1/things', payload: { patient: {}, kind: PHI } });
    expect(problem(bad).detail).toBe('body.kind must be equal to one of the allowed values');
    const missing = await app.inject({ method: 'POST', url: '/v1/things', payload: { [PHI]: 1 } });
    expect(problem(missing).detail).toBe("body must have required property 'patient'");
    expect(bad.body + missing.body + logs.text()).not.toContain(PHI);
  });

  it('maps body too large to 413, unsupported media type to 415, malformed JSON to 400', async () => {
    build(64);
    const big = await app.inject({ method: 'POST', url: '/v1/things', payload: { patient: { name: 'x'.repeat(100) }, kind: 'a' } });
    expect(big.statusCode).toBe(413);
    expect(problem(big)).toMatchObject({ code: 'CR_HTTP_BODY_TOO_LARGE', type: 'https://care-relay.dev/problems/http-body-too-large' });
    const xml = await app.inject({ method: 'POST', url: '/v1/things', headers: { 'content-type': 'application/xml' }, payload: '<a/>' });
    expect(xml.statusCode).toBe(415);
    expect(problem(xml)).toMatchObject({ code: 'CR_HTTP_UNSUPPORTED_MEDIA_TYPE' });
    const bad = await app.inject({ method: 'POST', url: '/v1/things', headers: { 'content-type': 'application/json' }, payload: `{"n":"${PHI}` });
    expect(bad.statusCode).toBe(400);
    expect(problem(bad)).toMatchObject({ code: 'CR_HTTP_MALFORMED_BODY', detail: 'The request body could not be parsed.' });
    expect(bad.body + logs.text()).not.toContain(PHI);
  });

  it('maps @fastify/rate-limit to 429 CR_HTTP_RATE_LIMITED with Retry-After, default builder or ours', async () => {
    for (const builder of [undefined, rateLimitErrorResponseBuilder]) {
      logs = captureLogger();
      app = createHttpServer({ logger: logs.logger, bodyLimit: 1024 });
      await app.register(rateLimit, { max: 1, timeWindow: 60_000, ...(builder ? { errorResponseBuilder: builder } : {}) });
      app.get('/limited', async () => ({ ok: true }));
      expect((await app.inject('/limited')).statusCode).toBe(200);
      const res = await app.inject('/limited');
      expect(res.statusCode).toBe(429);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(problem(res)).toMatchObject({ code: 'CR_HTTP_RATE_LIMITED', status: 429 });
      await app.close();
    }
  });

  it('turns an unknown error into a generic 500 and logs name and stack frames, not the message', async () => {
    build();
    for (const url of ['/boom', '/syntax', '/internal-relay']) {
      const res = await app.inject(url);
      expect(res.statusCode).toBe(500);
      expect(problem(res)).toEqual({
        type: 'https://care-relay.dev/problems/http-internal',
        title: 'Internal error',
        status: 500,
        detail: 'An internal error occurred.',
        code: 'CR_HTTP_INTERNAL',
      });
    }
    const failures = logs.lines.filter((l) => l.msg === 'request failed');
    expect(failures).toHaveLength(3);
    const first = failures[0]!.error as { name: string; frames: string[] };
    expect(first.name).toBe('Error');
    expect(first.frames.length).toBeGreaterThan(0);
    expect((failures[1]!.error as { name: string }).name).toBe('SyntaxError');
    expect(failures[2]!.error).toMatchObject({ name: 'RelayError', code: 'CR_SOMETHING_INTERNAL' });
    expect(logs.text()).not.toContain(PHI);
    expect(logs.text()).not.toContain('hunter2');
  });

  it('answers an unknown route with 404 CR_HTTP_NOT_FOUND', async () => {
    build();
    const res = await app.inject(`/nowhere/${PHI}?q=${PHI}`);
    expect(res.statusCode).toBe(404);
    expect(problem(res)).toMatchObject({ code: 'CR_HTTP_NOT_FOUND', type: 'https://care-relay.dev/problems/http-not-found' });
    expect(res.body).not.toContain(PHI);
  });
});

describe('HTTP error catalogue', () => {
  it('builds every factory with its catalogued code and status', () => {
    const made = [
      httpErrors.authMissing(), httpErrors.authInvalid(), httpErrors.forbidden(), httpErrors.validation('x'),
      httpErrors.malformedBody(), httpErrors.badRequest(), httpErrors.notFound(), httpErrors.bodyTooLarge(10),
      httpErrors.payloadTooLarge(), httpErrors.unsupportedMediaType(), httpErrors.rateLimited(1), httpErrors.unavailable(),
      httpErrors.emergency(), httpErrors.notReady({ q: 'failed' }), httpErrors.internal(), httpErrors.clientError(403),
      httpErrors.badUrl(), httpErrors.methodNotAllowed(), httpErrors.requestTimeout(), httpErrors.uriTooLong(), httpErrors.headersTooLarge(),
    ];
    for (const e of made) {
      const doc = HTTP_ERRORS[e.code as keyof typeof HTTP_ERRORS];
      expect(doc, e.code).toBeDefined();
      expect(e.code === 'CR_HTTP_CLIENT_ERROR' || e.status === doc.status).toBe(true);
    }
    expect(new Set(made.map((e) => e.code))).toEqual(new Set(Object.keys(HTTP_ERRORS)));
    expect(httpErrors.authInvalid().headers['www-authenticate']).toContain('error="invalid_token"');
  });

  it('documents every code in docs/errors.md', () => {
    const doc = readFileSync(resolve(import.meta.dirname, '../../../docs/errors.md'), 'utf8');
    for (const { code, status } of Object.values(HTTP_ERRORS)) {
      expect(doc, code).toMatch(new RegExp(`\\| \`${code}\` \\| ${code === 'CR_HTTP_CLIENT_ERROR' ? '4xx' : status} \\|`));
    }
  });
});
