import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { memoryAudit } from '../../../services/core/audit/auditLog.ts';
import {
  authPlugin,
  createTokenStore,
  hashToken,
  tokenEntrySchema,
  type TokenStore,
} from '../../../services/core/http/auth.ts';
import { createHttpServer } from '../../../services/core/http/server.ts';
import { captureLogger } from './helpers.ts';

const READER = 'rdr_0123456789abcdefghijklmnopqrstuv';
const ADMIN = 'adm_0123456789abcdefghijklmnopqrstuv';
const ROTATED = 'rdr_rotated_9876543210zyxwvutsrqpo';
const BODY_SECRET = 'patient-Jane-Doe-1970';

let dir: string;
let file: string;
let app: FastifyInstance;
let audit: ReturnType<typeof memoryAudit>;
let tokens: TokenStore;
let logs: ReturnType<typeof captureLogger>;

const writeTokens = (entries: unknown[]) => writeFile(file, JSON.stringify({ tokens: entries }));

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-auth-'));
  file = join(dir, 'tokens.json');
  await writeTokens([
    { name: 'ehr-reader', sha256: hashToken(READER), roles: ['reader'] },
    { name: 'ops', sha256: hashToken(ADMIN).toUpperCase(), roles: ['reader', 'admin'] },
  ]);
  tokens = createTokenStore({ file });
  audit = memoryAudit();
  logs = captureLogger();
  app = createHttpServer({ logger: logs.logger, bodyLimit: 4096 });
  await app.register(authPlugin, { tokens, audit });
  app.get('/v1/inbox', { config: { role: 'reader' } }, async (request) => ({ principal: request.principal }));
  app.post('/v1/admin', { config: { role: ['admin'] } }, async () => ({ ok: true }));
  app.get('/open', { config: { public: true } }, async (request) => ({ principal: request.principal }));
});

afterEach(async () => {
  await app.close();
  await rm(dir, { recursive: true, force: true });
});

const get = (url: string, token?: string) =>
  app.inject({ method: 'GET', url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

describe('hashToken', () => {
  it('is the sha256 hex of the token', () => {
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('authPlugin', () => {
  it('answers 401 CR_AUTH_MISSING without a token and audits the failure', async () => {
    const res = await get('/v1/inbox');
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="care-relay"');
    expect(res.json()).toMatchObject({ code: 'CR_AUTH_MISSING' });
    expect(audit.events).toEqual([
      {
        action: 'auth.failure',
        actor: 'anonymous',
        resourceType: 'route',
        resourceId: 'GET /v1/inbox',
        outcome: 'failure',
        sourceIp: '127.0.0.1',
        details: { reason: 'missing' },
      },
    ]);
  });

  it('answers 401 CR_AUTH_INVALID for an unknown token or another scheme', async () => {
    const res = await get('/v1/inbox', 'not-a-token');
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'CR_AUTH_INVALID' });
    expect(res.headers['www-authenticate']).toContain('invalid_token');
    const basic = await app.inject({ url: '/v1/inbox', headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
    expect(basic.json()).toMatchObject({ code: 'CR_AUTH_MISSING' });
    expect(audit.events.map((e) => [e.action, e.actor, e.details?.reason])).toEqual([
      ['auth.failure', 'anonymous', 'invalid'],
      ['auth.failure', 'anonymous', 'missing'],
    ]);
  });

  it('answers 403 CR_AUTH_FORBIDDEN for a token without the role and audits who', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/admin', headers: { authorization: `Bearer ${READER}` }, payload: {} });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'CR_AUTH_FORBIDDEN', type: 'https://care-relay.dev/problems/auth-forbidden' });
    expect(audit.events).toEqual([
      expect.objectContaining({ action: 'auth.forbidden', actor: 'ehr-reader', outcome: 'failure', resourceId: 'POST /v1/admin', details: { required: 'admin' } }),
    ]);
  });

  it('lets a token with the role through, sets request.principal and audits success', async () => {
    const res = await get('/v1/inbox', READER);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ principal: { name: 'ehr-reader', roles: ['reader'] } });
    const admin = await app.inject({ method: 'POST', url: '/v1/admin', headers: { authorization: `bearer ${ADMIN}` }, payload: {} });
    expect(admin.statusCode).toBe(200);
    expect(audit.events.map((e) => [e.action, e.actor, e.outcome, e.sourceIp])).toEqual([
      ['auth.success', 'ehr-reader', 'success', '127.0.0.1'],
      ['auth.success', 'ops', 'success', '127.0.0.1'],
    ]);
  });

  it('skips public routes and not-found', async () => {
    expect((await get('/open')).json()).toEqual({ principal: null });
    expect((await get('/nope')).statusCode).toBe(404);
    expect(audit.events).toEqual([]);
  });

  it('authenticates before reading the body', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/admin', headers: { 'content-type': 'application/json' }, payload: '{"broken' });
    expect(res.statusCode).toBe(401);
  });

  it('refuses to register a route that declares no role', async () => {
    const other = createHttpServer({ logger: logs.logger, bodyLimit: 1024 });
    await other.register(authPlugin, { tokens, audit });
    expect(() => other.get('/v1/undeclared', async () => ({}))).toThrow(/route GET \/v1\/undeclared declares no role/);
    await other.close();
  });

  it('takes a rotated token after reload and refuses the old one', async () => {
    expect((await get('/v1/inbox', READER)).statusCode).toBe(200);
    await writeTokens([{ name: 'ehr-reader', sha256: hashToken(ROTATED), roles: ['reader'] }]);
    tokens.reload();
    expect((await get('/v1/inbox', READER)).statusCode).toBe(401);
    expect((await get('/v1/inbox', ROTATED)).statusCode).toBe(200);
    expect(tokens.size).toBe(1);
  });

  it('keeps the previous tokens when a reload finds an invalid file, and names the problem', async () => {
    await writeTokens([{ name: 'x', sha256: 'nothex', roles: [] }]);
    expect(() => tokens.reload()).toThrow(/tokens file .*tokens\.json: tokens\.0\.sha256: expected 64 hex characters/);
    await writeFile(file, '{not json');
    expect(() => tokens.reload()).toThrow(/not valid JSON/);
    await writeTokens([
      { name: 'a', sha256: hashToken('1') },
      { name: 'a', sha256: hashToken('2') },
    ]);
    expect(() => tokens.reload()).toThrow(/duplicate name "a"/);
    expect((await get('/v1/inbox', READER)).statusCode).toBe(200);
  });

  it('never logs the token, the Authorization header or the body', async () => {
    await app.inject({ method: 'POST', url: `/v1/admin?x=${BODY_SECRET}`, headers: { authorization: `Bearer ${ADMIN}` }, payload: { name: BODY_SECRET } });
    await app.inject({ method: 'POST', url: '/v1/admin', headers: { authorization: `Bearer ${READER}` }, payload: { name: BODY_SECRET } });
    await get('/v1/inbox', 'wrong-token-value');
    const text = logs.text();
    expect(logs.lines.some((l) => l.msg === 'incoming request')).toBe(true);
    for (const secret of [ADMIN, READER, 'wrong-token-value', BODY_SECRET, 'authorization', 'Bearer']) expect(text).not.toContain(secret);
  });
});

describe('createTokenStore', () => {
  it('loads extended entries (partners) with a custom schema and finds them by token and name', async () => {
    const partnerSchema = tokenEntrySchema.extend({ contentTypes: z.array(z.string()), allowIps: z.array(z.string()).optional() });
    await writeTokens([{ name: 'clinic-a', sha256: hashToken('tok-a'), contentTypes: ['application/fhir+json'] }]);
    const store = createTokenStore({ file, entrySchema: partnerSchema });
    expect(store.lookup('tok-a')).toEqual({ name: 'clinic-a', sha256: hashToken('tok-a'), roles: [], contentTypes: ['application/fhir+json'] });
    expect(store.byName('clinic-a')?.contentTypes).toEqual(['application/fhir+json']);
    expect(store.lookup('tok-b')).toBeUndefined();
    await writeTokens([{ name: 'clinic-a', sha256: hashToken('tok-a') }]);
    expect(() => store.reload()).toThrow(/tokens\.0\.contentTypes/);
  });

  it('fails at start with the file named when it is missing', () => {
    expect(() => createTokenStore({ file: join(dir, 'absent.json') })).toThrow(/tokens file .*absent\.json: cannot read \(ENOENT\)/);
  });
});
