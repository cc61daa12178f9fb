import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../services/core/http/auth.ts';
import { ACCEPTED_MEDIA_TYPES } from '../../services/core/relay/contentTypes.ts';
import type { TestStack } from '../helpers/stack.ts';
import { bearer, expectProblem, problemType, startSecurityStack } from './helpers.ts';

let stack: TestStack;

beforeAll(async () => {
  stack = await startSecurityStack({ ifaceEnv: { INTAKE_MAX_BODY_BYTES: '65536' } });
});
afterAll(async () => {
  await stack?.stop();
});

/** Every problem seen, by code: a code must always come with the same type and status. */
const seen = new Map<string, { type: string; status: number }>();

function checkAnswer(res: LightMyRequestResponse): void {
  expect(res.statusCode, res.body).toBeLessThan(500);
  if (res.statusCode >= 400) {
    const doc = expectProblem(res, res.statusCode);
    const before = seen.get(doc.code);
    if (before) expect({ type: doc.type, status: doc.status }).toEqual(before);
    else seen.set(doc.code, { type: doc.type, status: doc.status });
  } else {
    expect(res.statusCode).toBe(202);
    expect(res.json<{ id: string }>().id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  }
  // Nothing a request sent comes back as a header of its own.
  for (const name of Object.keys(res.headers)) expect(name).not.toMatch(/injected|set-cookie/i);
}

const contentType = fc.oneof(
  fc.constantFrom(...ACCEPTED_MEDIA_TYPES),
  fc.constantFrom(
    'application/fhir+json; charset=utf-8',
    'APPLICATION/FHIR+JSON',
    'text/plain',
    'application/json',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=----x',
    '',
    'application/fhir+json\r\nX-Injected: 1',
    'application/fhir+json; charset=utf-16',
  ),
  fc.string({ maxLength: 80 }),
);

const body = fc.oneof(
  fc.string({ maxLength: 2000 }),
  fc.string({ unit: 'binary', maxLength: 2000 }),
  fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)),
  fc.json().map((j) => j),
  fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue()).map((o) => JSON.stringify({ resourceType: 'Observation', ...o })),
  fc.string({ maxLength: 500 }).map((s) => `MSH|^~\\&|${s}`),
  fc.string({ maxLength: 500 }).map((s) => `<?xml version="1.0"?>${s}`),
  fc.constant('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><ClinicalDocument>&lol2;</ClinicalDocument>'),
  fc.constant('\uFEFF{"resourceType":"Patient"}'),
  fc.constant(''),
);

const idempotencyKey = fc.option(
  fc.oneof(
    fc.string({ minLength: 1, maxLength: 250 }),
    fc.string({ unit: 'binary', maxLength: 100 }),
    fc.constant('x'.repeat(8192)),
    fc.constant('key\r\nX-Injected: yes'),
    fc.constant('key\nSet-Cookie: a=b'),
    fc.constant(' '),
    fc.constant('ключ-🔑'),
  ),
  { nil: undefined },
);

const authorization = fc.oneof(
  fc.constant('valid'),
  fc.constant('valid'),
  fc.constant(undefined),
  fc.constantFrom('Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'bearer not-a-token', 'Bearer a b c', 'Token abc'),
  fc.string({ maxLength: 300 }).map((s) => `Bearer ${s}`),
);

const extraHeaders = fc.dictionary(
  fc.stringMatching(/^x-[a-z0-9-]{1,20}$/),
  fc.oneof(fc.string({ maxLength: 200 }), fc.constant('v\r\nX-Injected: 1')),
  { maxKeys: 4 },
);

/** Injects; light-my-request refuses some header values itself (as Node's client does): those never reach the server. */
async function injectOrRefused(options: InjectOptions): Promise<LightMyRequestResponse | 'client-refused'> {
  try {
    return await stack.iface.server.inject(options);
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (/^ERR_(INVALID_CHAR|HTTP_INVALID_HEADER_VALUE|INVALID_HTTP_TOKEN)$/.test(code)) return 'client-refused';
    throw err;
  }
}

describe('hostile input on the intake route (fast-check)', () => {
  it('random bodies, content types, credentials, Idempotency-Keys and header injection attempts: never a 5xx, always problem+json for errors', async () => {
    let answered = 0;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(body, contentType, idempotencyKey, authorization, extraHeaders, async (payload, type, key, auth, extra) => {
        // One source per run: failed authentications from one source are limited (429), which would hide the deeper checks.
        run++;
        const remoteAddress = `198.18.${Math.floor(run / 250)}.${run % 250}`;
        const headers: Record<string, string> = { ...extra, 'content-type': type };
        if (auth === 'valid') headers.authorization = `Bearer ${stack.tokens.partner}`;
        else if (auth !== undefined) headers.authorization = auth;
        if (key !== undefined) headers['idempotency-key'] = key;
        const res = await injectOrRefused({ method: 'POST', url: '/v1/submissions', headers, payload, remoteAddress });
        if (res === 'client-refused') return;
        answered++;
        checkAnswer(res);
      }),
      { numRuns: 250 },
    );
    expect(answered).toBeGreaterThan(150);
    // The service is still healthy after all that.
    expect((await stack.iface.server.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });

  it('odd Idempotency-Keys get a 400 problem, a reused key with another body a 409', async () => {
    const post = (key: string, payload: string) =>
      stack.iface.server.inject({ method: 'POST', url: '/v1/submissions', headers: { ...bearer(stack.tokens.partner), 'content-type': 'application/fhir+json', 'idempotency-key': key }, payload });
    expectProblem(await post('x'.repeat(201), '{"resourceType":"Patient"}'), 400, 'CR_HTTP_VALIDATION');
    expectProblem(await post('x'.repeat(100_000), '{"resourceType":"Patient"}'), 400);
    expectProblem(await post('has space', '{"resourceType":"Patient"}'), 400, 'CR_IDEMPOTENCY_KEY_INVALID');
    expectProblem(await post('ключ', '{"resourceType":"Patient"}'), 400, 'CR_IDEMPOTENCY_KEY_INVALID');
    const key = `reuse-${Date.now()}`;
    expect((await post(key, '{"resourceType":"Patient","id":"a"}')).statusCode).toBe(202);
    expectProblem(await post(key, '{"resourceType":"Patient","id":"b"}'), 409, 'CR_IDEMPOTENCY_KEY_REUSED');
  });

  it('payload problems: empty, malformed, DOCTYPE, wrong content type are 400/415 problems with stable types', async () => {
    const post = (type: string, payload: string) =>
      stack.iface.server.inject({ method: 'POST', url: '/v1/submissions', headers: { ...bearer(stack.tokens.partner), 'content-type': type }, payload });
    expectProblem(await post('application/fhir+json', ''), 400, 'CR_PAYLOAD_EMPTY');
    expectProblem(await post('application/fhir+json', '{"resourceType":'), 400, 'CR_PAYLOAD_MALFORMED');
    expectProblem(await post('application/fhir+json', '[1,2]'), 400, 'CR_PAYLOAD_MALFORMED');
    expectProblem(await post('application/hl7-v2', 'PID|1||x'), 400, 'CR_PAYLOAD_MALFORMED');
    expectProblem(await post('application/xml', '<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'), 400, 'CR_PAYLOAD_MALFORMED');
    expectProblem(await post('application/fhir+json', '\u00ff\u00fe'.replace(/./g, (c) => c)), 400);
    expectProblem(await post('text/plain', 'hello'), 415, 'CR_HTTP_UNSUPPORTED_MEDIA_TYPE');
    expectProblem(await post('application/json', '{"resourceType":"Patient"}'), 415, 'CR_HTTP_UNSUPPORTED_MEDIA_TYPE');
    // The detail names what is accepted, never what was sent.
    const echoed = expectProblem(await post('application/x-zebulon-quatermaine', '{"resourceType":"Patient"}'), 415, 'CR_HTTP_UNSUPPORTED_MEDIA_TYPE');
    expect(echoed.detail).not.toContain('zebulon');
  });
});

describe('hostile input on the JSON routes', () => {
  const jsonRoutes = (): Array<{ name: string; service: 'iface' | 'app'; options: InjectOptions }> => [
    { name: 'interface PUT /v1/admin/emergency', service: 'iface', options: { method: 'PUT', url: '/v1/admin/emergency', headers: bearer(stack.tokens.admin) } },
    { name: 'app PUT /v1/admin/emergency', service: 'app', options: { method: 'PUT', url: '/v1/admin/emergency', headers: bearer(stack.tokens.admin) } },
  ];

  it('malformed JSON is a 400 problem (CR_HTTP_MALFORMED_BODY), a wrong shape a 400 (CR_HTTP_VALIDATION), a wrong type a 415', async () => {
    for (const route of jsonRoutes()) {
      const server = route.service === 'iface' ? stack.iface.server : stack.app.server;
      const send = (type: string, payload: string) => server.inject({ ...route.options, headers: { ...(route.options.headers as Record<string, string>), 'content-type': type }, payload });
      for (const bad of ['{', '{"active": tru', '', '\u0000', '{"active": true}}', '{"__proto__": {"active": true}, "active": false']) {
        expectProblem(await send('application/json', bad), 400);
      }
      expectProblem(await send('application/json', '{"active": tru'), 400, 'CR_HTTP_MALFORMED_BODY');
      // fastify's Ajv coerces "true"/1 to a boolean and drops unknown members; values that cannot be coerced are refused.
      expectProblem(await send('application/json', '{"active": "maybe"}'), 400, 'CR_HTTP_VALIDATION');
      expectProblem(await send('application/json', '{"active": {"$gt": ""}}'), 400, 'CR_HTTP_VALIDATION');
      expectProblem(await send('application/json', '{"enabled": true}'), 400, 'CR_HTTP_VALIDATION');
      expectProblem(await send('application/json', '[]'), 400, 'CR_HTTP_VALIDATION');
      // Prototype poisoning is refused by the JSON parser itself.
      expectProblem(await send('application/json', '{"__proto__": {"active": true}}'), 400, 'CR_HTTP_MALFORMED_BODY');
      expectProblem(await send('application/json', '{"constructor": {"prototype": {"active": true}}}'), 400, 'CR_HTTP_MALFORMED_BODY');
      expectProblem(await send('application/octet-stream', 'active=true'), 415, 'CR_HTTP_UNSUPPORTED_MEDIA_TYPE');
      expectProblem(await send('text/plain', 'active=true'), 400, 'CR_HTTP_VALIDATION');
      expect((await server.inject({ method: 'GET', url: '/v1/admin/emergency', headers: bearer(stack.tokens.admin) })).json()).toEqual({ active: false });
    }
  });

  it('fuzzed JSON bodies on the admin route: never a 5xx, always a problem for errors, the mode changes only on a body with `active`', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.json(), fc.string({ maxLength: 300 })), async (payload) => {
        const res = await stack.app.server.inject({ method: 'PUT', url: '/v1/admin/emergency', headers: { ...bearer(stack.tokens.admin), 'content-type': 'application/json' }, payload });
        expect(res.statusCode).toBeLessThan(500);
        if (res.statusCode >= 400) expectProblem(res, res.statusCode);
        else expect(Object.keys(JSON.parse(payload) as object)).toContain('active');
        if (stack.app.runtime.emergency.active) await stack.app.runtime.emergency.set(false, { actor: 'test' });
      }),
      { numRuns: 150 },
    );
  });
});

describe('credentials', () => {
  it('missing, malformed, unknown and rotated-out (revoked) app tokens are 401 problems; the new token works without a restart', async () => {
    const app = stack.app.server;
    const list = (authorization?: string) => app.inject({ method: 'GET', url: '/v1/inbox', headers: authorization === undefined ? {} : { authorization } });
    expectProblem(await list(), 401, 'CR_AUTH_MISSING');
    for (const header of ['Bearer', 'Bearer ', 'Basic cmVhZGVyOnJlYWRlcg==', `Token ${stack.tokens.reader}`, `Bearer ${stack.tokens.reader} extra`]) {
      expectProblem(await list(header), 401);
    }
    expectProblem(await list(`Bearer ${stack.tokens.reader}x`), 401, 'CR_AUTH_INVALID');
    expect((await list(`bearer ${stack.tokens.reader}`)).statusCode).toBe(200);

    const rotated = `rotated-${Date.now()}-reader-token`;
    const tokens = JSON.parse(JSON.stringify({ tokens: [] })) as { tokens: unknown[] };
    tokens.tokens.push(
      { name: 'reader', sha256: hashToken(rotated), roles: ['reader'] },
      { name: 'admin', sha256: hashToken(stack.tokens.admin), roles: ['admin'] },
    );
    await writeFile(join(stack.dir, 'app-tokens.json'), JSON.stringify(tokens));
    stack.app.reload();
    expectProblem(await list(`Bearer ${stack.tokens.reader}`), 401, 'CR_AUTH_INVALID');
    expect((await list(`Bearer ${rotated}`)).statusCode).toBe(200);
    // A revoked token (removed from the file) is refused too.
    expectProblem(await app.inject({ method: 'POST', url: '/v1/chart-updates', headers: { ...bearer(stack.tokens.writer), 'content-type': 'application/hl7-v2' }, payload: 'MSH|x' }), 401, 'CR_AUTH_INVALID');
  });

  it('every problem code seen in this file kept one type and one status', () => {
    expect(seen.size).toBeGreaterThan(3);
    for (const [code, { type }] of seen) expect(type).toBe(problemType(code));
  });
});
