import { afterEach, describe, expect, it } from 'vitest';
import { createSmsSender, statusCallbackUrl, validateSendInput } from '../../../services/app/sms/send.ts';
import { classifySignalWireError, createSignalWireClient, parseRetryAfter, SignalWireApiError, withRetry } from '../../../services/app/sms/client.ts';
import { hashId } from '../../../services/core/log/logger.ts';
import { isRelayError } from '../../../services/core/errors/relayError.ts';
import { fastRetry, memoryAudit, memoryQueue, startWorld, keylessClaims, waitFor, type SmsWorld } from './helpers.ts';
import { memoryApplyLedger } from '../../helpers/ledgers.ts';

let world: SmsWorld | undefined;
afterEach(async () => {
  await world?.fake.stop();
  world = undefined;
});

describe('sendSms', () => {
  it('validates the number, the body and media URLs', () => {
    const bad = (input: Parameters<typeof validateSendInput>[0], code: string, insecure = false) => {
      try {
        validateSendInput(input, insecure);
        throw new Error('accepted');
      } catch (err) {
        expect(isRelayError(err, code)).toBe(true);
        expect((err as { status: number }).status).toBe(400);
        expect((err as Error).message).not.toContain(input.to);
      }
    };
    bad({ to: '5551230001', body: 'x' }, 'CR_SMS_INVALID_TO');
    bad({ to: '+0551230001', body: 'x' }, 'CR_SMS_INVALID_TO');
    bad({ to: '+15551230001', body: '' }, 'CR_SMS_INVALID_BODY');
    bad({ to: '+15551230001', body: 'x'.repeat(1601) }, 'CR_SMS_INVALID_BODY');
    bad({ to: '+15551230001', body: 'x', mediaUrls: ['http://m.example/a.jpg'] }, 'CR_SMS_INVALID_MEDIA_URL');
    bad({ to: '+15551230001', body: 'x', mediaUrls: ['ftp://m.example/a.jpg'] }, 'CR_SMS_INVALID_MEDIA_URL', true);
    bad({ to: '+15551230001', body: 'x', mediaUrls: Array(11).fill('https://m.example/a.jpg') }, 'CR_SMS_INVALID_MEDIA_URL');
    expect(() => validateSendInput({ to: '+15551230001', body: 'x', mediaUrls: ['http://m.example/a.jpg'] }, true)).not.toThrow();
    expect(() => validateSendInput({ to: '+15551230001', body: '', mediaUrls: ['https://m.example/a.jpg'] })).not.toThrow();
  });

  it('sends with the status callback, enqueues the delayed fallback job and audits a hashed number', async () => {
    world = await startWorld({ manual: true }, { fallbackDelaySeconds: 5000, webhookBasicAuth: { user: 'u', password: 'p w' } });
    const q = memoryQueue();
    const audit = memoryAudit();
    const send = createSmsSender({ config: world.config, api: world.api, claims: keylessClaims, settled: memoryApplyLedger(), enqueue: q.enqueue, audit });
    const { sid, status } = await send({ to: '+15551230001', body: 'hello', mediaUrls: ['https://m.example/a.jpg'] }, { actor: 'token:nurse-app', sourceIp: '10.0.0.1' });
    expect(status).toBe('queued');
    const req = world.fake.requests.find((r) => r.method === 'POST')!;
    expect(req.form.StatusCallback).toEqual([statusCallbackUrl(world.config)]);
    expect(req.form.StatusCallback![0]).toBe(`http://u:p%20w@127.0.0.1:${world.port}/webhooks/signalwire/message-status`);
    expect(req.form.MediaUrl).toEqual(['https://m.example/a.jpg']);
    expect(q.jobs).toHaveLength(1);
    expect(q.jobs[0]!.delaySeconds).toBe(900);
    expect(q.jobs[0]!.job).toMatchObject({ v: 1, sid, trigger: 'fallback' });
    expect(Object.keys(q.jobs[0]!.job).sort()).toEqual(['enqueuedAt', 'firstSeenAt', 'sid', 'trigger', 'v']);
    expect(audit.events).toMatchObject([
      { action: 'sms.sending', actor: 'token:nurse-app', outcome: 'success', sourceIp: '10.0.0.1', resourceId: hashId('test-hmac-key', '+15551230001'), details: { media: 1, keyed: false } },
      { action: 'sms.sent', actor: 'token:nurse-app', outcome: 'success', sourceIp: '10.0.0.1', resourceId: hashId('test-hmac-key', sid), details: { toHash: hashId('test-hmac-key', '+15551230001'), media: 1 } },
    ]);
    expect(JSON.stringify(audit.events)).not.toContain('5551230001');
  });

  it('writes sms.sending before the create call, and waits for it to be written: a process that stops between the create and sms.sent leaves that line', async () => {
    world = await startWorld({ manual: true });
    const audit = memoryAudit();
    const record = audit.record.bind(audit);
    let written!: () => void;
    const gate = new Promise<void>((resolve) => (written = resolve));
    // The trail's write of sms.sending is held: the create call must wait for it.
    audit.record = async (event) => {
      await record(event);
      if (event.action === 'sms.sending') await gate;
    };
    const send = createSmsSender({ config: world.config, api: world.api, claims: keylessClaims, settled: memoryApplyLedger(), enqueue: memoryQueue().enqueue, audit });
    const sending = send({ to: '+15551230002', body: 'hello' }, { actor: 'token:nurse-app' });
    await waitFor(() => audit.events.length === 1, 5000, 'the sms.sending line');
    expect(audit.events[0]).toMatchObject({ action: 'sms.sending', resourceId: hashId('test-hmac-key', '+15551230002'), details: { media: 0, keyed: false } });
    expect(world.fake.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
    written();
    const { sid } = await sending;
    expect(world.fake.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(audit.events.map((e) => [e.action, e.resourceId])).toEqual([['sms.sending', hashId('test-hmac-key', '+15551230002')], ['sms.sent', hashId('test-hmac-key', sid)]]);
  });

  it('maps SignalWire refusals and outages to problem errors; the message still goes when the fallback enqueue fails', async () => {
    world = await startWorld({ manual: true });
    const audit = memoryAudit();
    // The queue takes the job enqueued before the create call, then fails.
    const send = createSmsSender({ config: world.config, api: world.api, claims: keylessClaims, settled: memoryApplyLedger(), enqueue: async (job) => (job.trigger === 'pending' ? undefined : Promise.reject(new Error('queue down'))), audit, retry: fastRetry });
    world.fake.faults.inject({ count: 10, status: 503 });
    await expect(send({ to: '+15551230001', body: 'x' })).rejects.toMatchObject({ code: 'CR_SMS_PROVIDER_UNAVAILABLE', status: 503 });
    world.fake.faults.clear();
    world.fake.faults.inject({ count: 1, status: 500 });
    // A 500 may have been accepted: not retried, so never sent twice.
    await expect(send({ to: '+15551230001', body: 'x' })).rejects.toMatchObject({ code: 'CR_SMS_PROVIDER_UNAVAILABLE' });
    expect(world.fake.store.messages.size).toBe(0);
    world.fake.faults.inject({ count: 1, status: 429, retryAfter: 0 });
    const ok = await send({ to: '+15551230001', body: 'x' });
    expect(world.fake.message(ok.sid)).toBeDefined();
    expect(audit.events.at(-1)).toMatchObject({ action: 'sms.sent', outcome: 'success', details: { fallbackEnqueued: false } });
  });
});

describe('SignalWire client', () => {
  it('refuses plain http except to loopback when allowed', () => {
    expect(() => createSignalWireClient({ projectId: 'p', apiToken: 't', spaceUrl: 'http://127.0.0.1:1' })).toThrow(/loopback/);
    expect(() => createSignalWireClient({ projectId: 'p', apiToken: 't', spaceUrl: 'http://example.com', allowInsecure: true })).toThrow(/loopback/);
    expect(() => createSignalWireClient({ projectId: 'p', apiToken: 't', spaceUrl: 'https://example.signalwire.com' })).not.toThrow();
    expect(() => createSignalWireClient({ projectId: 'p', apiToken: 't', spaceUrl: 'example.signalwire.com' })).not.toThrow();
  });

  it('classifies errors, including the SDK\'s own SyntaxError and RestException', () => {
    expect(classifySignalWireError(new SyntaxError('Unexpected token <'))).toEqual({ kind: 'transient' });
    expect(classifySignalWireError(Object.assign(new Error('x'), { status: 404, code: 20404 }))).toMatchObject({ kind: 'not-found' });
    expect(classifySignalWireError(new SignalWireApiError(400, 20009, undefined, false))).toMatchObject({ kind: 'in-progress' });
    expect(classifySignalWireError(new SignalWireApiError(400, 21211, undefined, false))).toMatchObject({ kind: 'rejected' });
    expect(classifySignalWireError(new SignalWireApiError(502, undefined, undefined, true))).toMatchObject({ kind: 'transient', status: 502 });
    expect(classifySignalWireError(new SignalWireApiError(403, undefined, undefined, true))).toMatchObject({ kind: 'rejected' });
    expect(classifySignalWireError(new TypeError('fetch failed'))).toEqual({ kind: 'transient' });
    expect(parseRetryAfter('7')).toBe(7);
    expect(parseRetryAfter(new Date(Date.now() + 3000).toUTCString())).toBeGreaterThanOrEqual(2);
  });

  it('retries with backoff and jitter, and gives up on non-transient errors at once', async () => {
    let calls = 0;
    await expect(withRetry('x', async () => {
      calls++;
      throw new SyntaxError('Unexpected token <');
    }, fastRetry)).rejects.toThrow(SyntaxError);
    expect(calls).toBe(4);
    calls = 0;
    await expect(withRetry('x', async () => {
      calls++;
      throw new SignalWireApiError(401, 20003, undefined, false);
    }, fastRetry)).rejects.toThrow(/401/);
    expect(calls).toBe(1);
  });
});
