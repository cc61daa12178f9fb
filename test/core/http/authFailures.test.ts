import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { statusWebhook } from '../../../services/app/sms/webhook.ts';
import { STATUS_WEBHOOK_PATH } from '../../../services/app/sms/send.ts';
import type { SmsConfig } from '../../../services/app/sms/types.ts';
import { memoryAudit } from '../../../services/core/audit/auditLog.ts';
import type { AuditEvent } from '../../../services/core/audit/types.ts';
import { authPlugin, createTokenStore, hashToken } from '../../../services/core/http/auth.ts';
import { createAuthFailureLimiter, OVERFLOW_SOURCE, type AuthFailureLimiter } from '../../../services/core/http/authFailures.ts';
import { createHttpServer } from '../../../services/core/http/server.ts';
import { captureLogger } from './helpers.ts';

const READER = 'rdr_0123456789abcdefghijklmnopqrstuv';
let dir: string;
let app: FastifyInstance;
let audit: ReturnType<typeof memoryAudit>;
let limiter: AuthFailureLimiter;
let clock: number;

const failures = () => audit.events.filter((e) => e.action === 'auth.failure');
const counted = (events: AuditEvent[]) => events.reduce((n, e) => n + Number(e.details?.count ?? 0), 0);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-authfail-'));
  await writeFile(join(dir, 'tokens.json'), JSON.stringify({ tokens: [{ name: 'ehr-reader', sha256: hashToken(READER), roles: ['reader'] }] }));
  audit = memoryAudit();
  clock = Date.parse('2026-01-01T00:00:00Z');
  limiter = createAuthFailureLimiter({ audit, limit: 10, windowMs: 60_000, maxSources: 100, now: () => clock });
  app = createHttpServer({ logger: captureLogger().logger, bodyLimit: 4096 });
  await app.register(authPlugin, { tokens: createTokenStore({ file: join(dir, 'tokens.json') }), audit, failures: limiter });
  app.get('/v1/inbox', { config: { role: 'reader' } }, async () => ({ ok: true }));
});
afterEach(async () => {
  await app.close();
  await limiter.close();
  await rm(dir, { recursive: true, force: true });
});

const get = (token: string | undefined, remoteAddress: string) =>
  app.inject({ method: 'GET', url: '/v1/inbox', remoteAddress, headers: token ? { authorization: `Bearer ${token}` } : {} });

describe('failed authentications are limited per source and aggregated', () => {
  it('1,000 bad-token requests wrote 1,000 audit lines: now a bounded few whose counts add up to 1,000', async () => {
    const statuses = new Map<number, number>();
    for (let i = 0; i < 1000; i++) {
      clock += 10;
      const res = await get(i % 100 === 0 ? undefined : 'wrong-token', '198.51.100.7');
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    }
    // The first 10 failures are answered 401; the source is then refused with 429 until its window ends.
    expect(statuses.get(401)).toBe(10);
    expect(statuses.get(429)).toBe(990);
    // Until the window (opened by the first failure, at +10 ms) ends: 50.01 s, rounded up. This probe is counted too.
    expect((await get('wrong-token', '198.51.100.7')).headers['retry-after']).toBe('51');
    await limiter.close();
    const lines = failures();
    expect(lines.length).toBeLessThanOrEqual(2);
    expect(counted(lines)).toBe(1001);
    expect(lines[0]).toMatchObject({ actor: 'anonymous', sourceIp: '198.51.100.7', resourceId: 'GET /v1/inbox', details: { count: 1, reason: 'missing' } });
    expect(lines[1]).toMatchObject({ sourceIp: '198.51.100.7', details: { count: 1000, refused: 991, reasons: 'invalid=9', firstAt: '2026-01-01T00:00:00.010Z' } });
  });

  it('a legitimate token still works from another source while one is refused', async () => {
    for (let i = 0; i < 30; i++) await get('wrong-token', '198.51.100.7');
    expect((await get(READER, '198.51.100.7')).statusCode).toBe(429);
    expect((await get(READER, '203.0.113.5')).statusCode).toBe(200);
  });

  it('a refused source may try again once its window ends; the window\'s aggregate is written then', async () => {
    for (let i = 0; i < 12; i++) await get('wrong-token', '198.51.100.7');
    expect((await get(READER, '198.51.100.7')).statusCode).toBe(429);
    clock += 60_000;
    expect((await get(READER, '198.51.100.7')).statusCode).toBe(200);
    expect(counted(failures())).toBe(13);
  });

  it('keeps its memory bounded under many distinct sources, counting the excess under one source', async () => {
    for (let i = 0; i < 5000; i++) await limiter.fail(`10.0.${Math.floor(i / 250)}.${i % 250}`, { actor: 'anonymous', resourceType: 'route', resourceId: 'GET /v1/inbox', reason: 'invalid' });
    expect(limiter.size).toBeLessThanOrEqual(101);
    // Sources past the bound are not refused individually (an attacker must not lock out newcomers).
    expect(limiter.refuse('10.0.19.249')).toBe(0);
    await limiter.close();
    expect(limiter.size).toBe(0);
    const lines = failures();
    expect(lines.length).toBe(101);
    expect(counted(lines)).toBe(5000);
    expect(lines.find((l) => l.sourceIp === OVERFLOW_SOURCE)?.details?.count).toBe(4900);
  });
});

describe('rejected SignalWire callbacks are limited and aggregated the same way', () => {
  it('1,000 unsigned callbacks from one source: bounded lines, counts add up', async () => {
    const config = { signingKey: 'sk_test', publicBaseUrl: 'https://relay.example.org', hmacKey: 'h'.repeat(32), sentGraceSeconds: 1 } as unknown as SmsConfig;
    const hook = createHttpServer({ logger: captureLogger().logger, bodyLimit: 4096 });
    await hook.register(statusWebhook, { config, enqueue: async () => {}, audit, failures: limiter });
    const statuses: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const res = await hook.inject({ method: 'POST', url: STATUS_WEBHOOK_PATH, remoteAddress: '192.0.2.44', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'MessageSid=SM0123456789&MessageStatus=delivered' });
      statuses.push(res.statusCode);
    }
    await hook.close();
    expect(statuses.filter((s) => s === 403)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(990);
    await limiter.close();
    const lines = failures();
    expect(lines.length).toBeLessThanOrEqual(2);
    expect(counted(lines)).toBe(1000);
    expect(lines[0]).toMatchObject({ actor: 'signalwire-webhook', resourceType: 'webhook', sourceIp: '192.0.2.44', details: { reason: 'signature-missing' } });
  });
});
