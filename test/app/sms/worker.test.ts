import { afterEach, describe, expect, it } from 'vitest';
import { AuditError } from '../../../services/core/audit/errors.ts';
import { buildRedactionJob } from '../../../services/app/sms/redactionJob.ts';
import { createRedactionHandler } from '../../../services/app/sms/redactionWorker.ts';
import type { SmsMetricName } from '../../../services/app/sms/types.ts';
import { captureLogger, fastRetry, keylessClaims, memoryAudit, memoryQueue, startWorld, waitFor, type SmsWorld } from './helpers.ts';
import { memoryApplyLedger } from '../../helpers/ledgers.ts';

let world: SmsWorld | undefined;
afterEach(async () => {
  await world?.fake.stop();
  world = undefined;
});

const abort = () => new AbortController().signal;
const jobBody = (sid: string, firstSeenAt = new Date()) => ({ body: JSON.stringify(buildRedactionJob(sid, 'fallback', new Date(), firstSeenAt)) });

function setup(w: SmsWorld, overrides: Partial<SmsWorld['config']> = {}, audited = memoryApplyLedger()) {
  const audit = memoryAudit();
  const queue = memoryQueue();
  const settled = memoryApplyLedger();
  const log = captureLogger();
  const counted: SmsMetricName[] = [];
  const handler = createRedactionHandler({ config: { ...w.config, ...overrides }, api: w.api, audit, audited, enqueue: queue.enqueue, settled, claims: keylessClaims, logger: log.logger, retry: fastRetry, metrics: { inc: (n) => void counted.push(n) } });
  return { audit, log, counted, handler, audited, queue, settled };
}

async function sendMms(w: SmsWorld, media = 2, to = '+15551230001') {
  const urls = Array.from({ length: media }, (_, i) => `https://m.example/${i}.jpg`);
  return w.api.messages.create({ to, from: w.config.fromNumber, body: 'Your results are ready', ...(media ? { mediaUrl: urls } : {}) });
}

describe('redaction worker', () => {
  it('deletes every media item, confirms, then blanks the body; a second run is a no-op', async () => {
    world = await startWorld({ manual: true });
    const { handler, audit } = setup(world);
    const m = await sendMms(world, 3);
    world.fake.settle(m.sid);
    expect(await handler(jobBody(m.sid), abort())).toEqual({ status: 'done' });
    expect(world.fake.mediaOf(m.sid)).toHaveLength(0);
    expect(world.fake.message(m.sid)!.body).toBe('');
    const ops = world.fake.requests.filter((r) => r.method !== 'GET' || r.path.includes('/Media')).map((r) => `${r.method} ${r.path.includes('/Media') ? 'media' : 'message'}`);
    expect(ops).toEqual(['POST message', 'GET media', 'DELETE media', 'DELETE media', 'DELETE media', 'GET media', 'POST message']);
    expect(audit.events).toMatchObject([{ action: 'sms.redacted', outcome: 'success', details: { mediaDeleted: 3, mode: 'redact', messageFound: true } }]);
    expect(audit.events[0]!.resourceId).not.toContain(m.sid);
    expect(await handler(jobBody(m.sid), abort())).toEqual({ status: 'done' });
    expect(audit.events).toHaveLength(1);
  });

  it('a redaction whose sms.redacted line was not written (a kill or a failed write between): the next job writes it, marked copy; the one after writes nothing', async () => {
    world = await startWorld({ manual: true });
    const audited = memoryApplyLedger();
    const m = await sendMms(world, 2);
    world.fake.settle(m.sid);
    // The first job redacts, then its line fails (disk full), as when the process dies between the two.
    const diskFull = { record: async () => Promise.reject(new AuditError('CR_AUDIT_WRITE_FAILED', 'audit trail: write failed (ENOSPC)')) };
    const first = createRedactionHandler({ config: world.config, api: world.api, audit: diskFull, audited, enqueue: memoryQueue().enqueue, settled: memoryApplyLedger(), claims: keylessClaims, retry: fastRetry });
    expect(await first(jobBody(m.sid), abort())).toMatchObject({ status: 'retry', reason: 'audit-write-failed' });
    expect(world.fake.message(m.sid)!.body).toBe('');
    expect(world.fake.mediaOf(m.sid)).toHaveLength(0);
    expect(audited.done.size).toBe(0);
    const { handler, audit } = setup(world, {}, audited);
    expect(await handler(jobBody(m.sid), abort())).toEqual({ status: 'done' });
    expect(audit.events).toMatchObject([{ action: 'sms.redacted', outcome: 'success', details: { messageFound: true, alreadyRedacted: true, copy: true, mode: 'redact' } }]);
    expect(audit.events[0]!.resourceId).not.toContain(m.sid);
    // Marked now: the message's later jobs (the scheduled one, the sweep's) find it redacted and audited.
    expect(await handler(jobBody(m.sid), abort())).toEqual({ status: 'done' });
    expect(audit.events).toHaveLength(1);
  });

  it('deletes the message too in delete mode, after its media', async () => {
    world = await startWorld({ manual: true }, { redactionMode: 'delete' });
    const { handler } = setup(world);
    const m = await sendMms(world, 2);
    world.fake.settle(m.sid);
    expect(await handler(jobBody(m.sid), abort())).toEqual({ status: 'done' });
    expect(world.fake.message(m.sid)).toBeUndefined();
    expect(world.fake.mediaOf(m.sid)).toHaveLength(0);
  });

  it('in delete mode, the message\'s later jobs (the `sent` status job after the grace, the fallback job) find it gone and write nothing: one sms.redacted, no callback_unknown', async () => {
    world = await startWorld({ manual: true }, { redactionMode: 'delete' });
    const { handler, audit } = setup(world);
    const m = await sendMms(world, 1);
    world.fake.settle(m.sid);
    const statusJob = (status: string, firstSeenAt = new Date()) => ({ body: JSON.stringify(buildRedactionJob(m.sid, 'status', new Date(), firstSeenAt, status)) });
    expect(await handler(statusJob('delivered'), abort())).toEqual({ status: 'done' });
    expect(world.fake.message(m.sid)).toBeUndefined();
    expect(await handler(statusJob('sent', new Date(Date.now() - 5_000)), abort())).toEqual({ status: 'done' });
    expect(await handler(jobBody(m.sid), abort())).toEqual({ status: 'done' });
    expect(await handler(jobBody(m.sid), abort())).toEqual({ status: 'done' });
    expect(audit.events.map((e) => [e.action, e.details?.messageFound])).toEqual([['sms.redacted', true]]);
  });

  it('re-delays (retry, not failure) while the message is in progress, and redacts once it ends', async () => {
    world = await startWorld({ manual: true });
    const { handler, audit } = setup(world);
    const m = await sendMms(world, 1);
    const r = await handler(jobBody(m.sid), abort());
    expect(r).toMatchObject({ status: 'retry', reason: 'in-progress' });
    expect((r as { afterSeconds: number }).afterSeconds).toBeGreaterThanOrEqual(1);
    expect(world.fake.message(m.sid)!.body).not.toBe('');
    expect(audit.events).toHaveLength(0);
    world.fake.settle(m.sid);
    expect(await handler(jobBody(m.sid), abort())).toEqual({ status: 'done' });
  });

  it('redacts an MMS stuck at `sent` only after the grace period', async () => {
    // The API's dates are whole seconds (RFC 2822), so a message can look up to a second older
    // than it is: a 3 s grace leaves 2 s for the first look to land inside it on a loaded machine.
    world = await startWorld({ stepMs: 5 }, { sentGraceSeconds: 3 });
    world.fake.nextOutcome('sent');
    const { handler } = setup(world);
    const m = await sendMms(world, 2);
    await waitFor(() => world!.fake.message(m.sid)!.status === 'sent');
    const first = await handler(jobBody(m.sid), abort());
    expect(first).toMatchObject({ status: 'retry', reason: 'sent-grace' });
    expect((first as { afterSeconds: number }).afterSeconds).toBeGreaterThanOrEqual(1);
    expect((first as { afterSeconds: number }).afterSeconds).toBeLessThanOrEqual(3);
    expect(world.fake.mediaOf(m.sid)).toHaveLength(2);
    const result = await waitFor(async () => {
      const r = await handler(jobBody(m.sid), abort());
      return r.status === 'done' ? r : undefined;
    }, 15_000, 'grace to pass');
    expect(result).toEqual({ status: 'done' });
    expect(world.fake.mediaOf(m.sid)).toHaveLength(0);
    expect(world.fake.message(m.sid)!.body).toBe('');
  });

  it('retries through 429 (honouring Retry-After) and 5xx bursts', async () => {
    world = await startWorld({ manual: true });
    const { handler } = setup(world);
    const m = await sendMms(world, 2);
    world.fake.settle(m.sid);
    world.fake.faults.inject({ count: 1, status: 429, retryAfter: 1, method: 'GET' });
    world.fake.faults.inject({ count: 2, status: 503, method: 'DELETE' });
    world.fake.faults.inject({ count: 1, status: 500, method: 'POST' });
    const t0 = Date.now();
    expect(await handler(jobBody(m.sid), abort())).toEqual({ status: 'done' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(world.fake.faults.remaining).toBe(0);
    expect(world.fake.message(m.sid)!.body).toBe('');
    expect(world.fake.mediaOf(m.sid)).toHaveLength(0);
  });

  it('hands a long Retry-After back to the queue as a re-delay instead of sleeping', async () => {
    world = await startWorld({ manual: true });
    const { handler } = setup(world);
    const m = await sendMms(world, 0);
    world.fake.settle(m.sid);
    world.fake.faults.inject({ count: 1, status: 429, retryAfter: 30 });
    expect(await handler(jobBody(m.sid), abort())).toMatchObject({ status: 'retry', reason: 'signalwire-429', afterSeconds: 30 });
    expect(await handler(jobBody(m.sid), abort())).toEqual({ status: 'done' });
  });

  it('copes with a non-JSON error body (the SDK alone would throw a SyntaxError)', async () => {
    world = await startWorld({ manual: true });
    const { handler } = setup(world, {});
    const m = await sendMms(world, 1);
    world.fake.settle(m.sid);
    world.fake.faults.inject({ count: 2, status: 502, nonJson: true });
    expect(await handler(jobBody(m.sid), abort())).toEqual({ status: 'done' });
    world.fake.faults.inject({ count: 10, status: 502, nonJson: true });
    const r = await handler(jobBody(m.sid), abort());
    expect(r).toMatchObject({ status: 'retry', reason: 'signalwire-502' });
  });

  it('treats a missing message as done (audited), and still deletes media left under its sid', async () => {
    world = await startWorld({ manual: true });
    const { handler, audit } = setup(world);
    const m = await sendMms(world, 2);
    world.fake.settle(m.sid);
    await world.api.messages(m.sid).remove();
    expect(world.fake.mediaOf(m.sid)).toHaveLength(2);
    expect(await handler(jobBody(m.sid), abort())).toEqual({ status: 'done' });
    expect(world.fake.mediaOf(m.sid)).toHaveLength(0);
    expect(await handler(jobBody('00000000-0000-4000-8000-000000000000'), abort())).toEqual({ status: 'done' });
    expect(audit.events.map((e) => [e.action, e.details?.messageFound, e.details?.mediaDeleted])).toEqual([['sms.redacted', false, 2], ['sms.redacted', false, 0]]);
  });

  it('regression: a signed callback for an unknown MessageSid is audited as sms.callback_unknown, not as sms.redacted', async () => {
    world = await startWorld({ manual: true });
    const { handler, audit } = setup(world);
    const unknown = '00000000-0000-4000-8000-00000000abcd';
    const statusJob = { body: JSON.stringify(buildRedactionJob(unknown, 'status', new Date(), undefined, 'delivered')) };
    expect(await handler(statusJob, abort())).toEqual({ status: 'done' });
    expect(audit.events).toMatchObject([{ action: 'sms.callback_unknown', outcome: 'failure', resourceType: 'sms', details: { trigger: 'status', status: 'delivered', mediaDeleted: 0 } }]);
    expect(JSON.stringify(audit.events)).not.toContain(unknown);
  });

  it('dead-letters a message not redactable within the window, with a metric and an audit event', async () => {
    world = await startWorld({ manual: true }, { redactionWindowSeconds: 60 });
    const { handler, audit, counted } = setup(world);
    const m = await sendMms(world, 1);
    const old = new Date(Date.now() - 61_000);
    expect(await handler(jobBody(m.sid, old), abort())).toEqual({ status: 'dead-letter', reason: 'in-progress-past-window' });
    expect(counted).toContain('sms_redaction_dead_lettered_total');
    expect(audit.events).toMatchObject([{ action: 'sms.redaction-failed', outcome: 'failure', details: { reason: 'in-progress-past-window' } }]);
  });

  it('quarantines a job that is not valid', async () => {
    world = await startWorld({ manual: true });
    const { handler } = setup(world);
    expect(await handler({ body: 'not json' }, abort())).toEqual({ status: 'quarantine', reason: 'CR_SMS_JOB_INVALID' });
    expect(await handler({ body: JSON.stringify({ v: 2, sid: 'x' }) }, abort())).toEqual({ status: 'quarantine', reason: 'CR_SMS_JOB_INVALID' });
  });
});
