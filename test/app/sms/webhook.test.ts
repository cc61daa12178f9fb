import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { computeSignature, verifySignature } from '../../../services/app/sms/signature.ts';
import { StatusMap } from '../../../services/app/sms/statusMap.ts';
import { publicBaseUrl, STATUS_WEBHOOK_PATH, statusCallbackUrl } from '../../../services/app/sms/send.ts';
import { memoryAudit, memoryQueue, startWebhook, startWorld, waitFor, type SmsWorld } from './helpers.ts';

let world: SmsWorld | undefined;
let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  await world?.fake.stop();
  app = undefined;
  world = undefined;
});

const SID = '0f2b7c1e-1111-4222-8333-944455556666';
const params = (status: string) => ({ AccountSid: 'acc', Body: '', From: '+15550009999', MessageSid: SID, MessageStatus: status, SmsSid: SID, SmsStatus: status, To: '+15551230001' });
const postForm = (w: SmsWorld, body: Record<string, string>, headers: Record<string, string>, query = '') =>
  fetch(`${w.config.publicBaseUrl}${STATUS_WEBHOOK_PATH}${query}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body).toString() });

/**
 * Settles a message and waits for its callbacks. The fake posts each status callback as it
 * happens, concurrently, so they can arrive in any order (as SignalWire's can); held and then
 * released in order, they arrive in the order the lifecycle made them.
 */
async function settleInOrder(w: SmsWorld, sid: string): Promise<void> {
  w.fake.callbacks.holding = true;
  w.fake.settle(sid);
  w.fake.callbacks.release('fifo');
  await w.fake.callbacks.idle();
}

describe('status webhook', () => {
  it('enqueues one redaction job for a signed terminal callback sent by the fake', async () => {
    world = await startWorld({ manual: true });
    const q = memoryQueue();
    app = await startWebhook(world, { enqueue: q.enqueue });
    const m = await world.api.messages.create({ to: '+15551230001', from: world.config.fromNumber, body: 'hi', statusCallback: statusCallbackUrl(world.config) });
    await settleInOrder(world, m.sid);
    expect(world.fake.callbacks.sent.map((c) => c.responseStatus)).toEqual([204, 204, 204]);
    // `sent` enqueues a job delayed by the grace period; `delivered` one right away.
    expect(q.jobs.map((j) => [j.job.sid, j.job.status, j.delaySeconds])).toEqual([[m.sid, 'sent', 1], [m.sid, 'delivered', 0]]);
    expect(q.jobs[1]!.job).toMatchObject({ v: 1, trigger: 'status' });
    // A repeated callback is harmless.
    expect(await world.fake.callbacks.replay(world.fake.callbacks.sent[2]!)).toBe(204);
    expect(q.jobs).toHaveLength(2);
  });

  it('rejects forged, unsigned and wrongly signed callbacks with 403 problem+json and changes nothing', async () => {
    world = await startWorld();
    const q = memoryQueue();
    const audit = memoryAudit();
    const statusMap = new StatusMap();
    app = await startWebhook(world, { enqueue: q.enqueue, audit, statusMap });
    const url = world.config.publicBaseUrl + STATUS_WEBHOOK_PATH;
    const p = params('delivered');
    const cases: Record<string, string>[] = [
      {},
      { 'x-signalwire-signature': 'AAAA' },
      { 'x-signalwire-signature': computeSignature(world.config.apiToken, url, p) },
      { 'x-signalwire-signature': computeSignature(world.config.signingKey, url + '?x=1', p) },
      { 'x-signalwire-signature': computeSignature(world.config.signingKey, url, { ...p, MessageStatus: 'sent' }) },
      { 'x-signalwire-signature': computeSignature(world.config.signingKey, url, { ...p, Body: undefined as unknown as string }) },
      { 'x-twilio-signature': computeSignature(world.config.apiToken, url, p) },
    ];
    for (const headers of cases) {
      const res = await postForm(world, p, headers);
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(await res.json()).toMatchObject({ status: 403, code: 'CR_SMS_WEBHOOK_SIGNATURE', type: expect.stringContaining('sms-webhook-signature') });
    }
    expect(q.jobs).toHaveLength(0);
    expect(statusMap.size).toBe(0);
    expect(audit.events.every((e) => e.action === 'auth.failure' && e.outcome === 'failure')).toBe(true);
    expect(audit.events).toHaveLength(cases.length);
    // The same request, correctly signed (empty Body included), is accepted.
    const good = await postForm(world, p, { 'x-signalwire-signature': computeSignature(world.config.signingKey, url, p) });
    expect(good.status).toBe(204);
    expect(q.jobs).toHaveLength(1);
  });

  it('signs over the query string too', async () => {
    world = await startWorld();
    const q = memoryQueue();
    app = await startWebhook(world, { enqueue: q.enqueue });
    const url = world.config.publicBaseUrl + STATUS_WEBHOOK_PATH + '?tenant=a%20b';
    const p = params('failed');
    expect((await postForm(world, p, { 'x-signalwire-signature': computeSignature(world.config.signingKey, url, p) }, '?tenant=a%20b')).status).toBe(204);
    expect((await postForm(world, p, { 'x-signalwire-signature': computeSignature(world.config.signingKey, url, p) }, '?tenant=other')).status).toBe(403);
  });

  it('PUBLIC_BASE_URL written with an upper-case host and a trailing slash: the fake signs the callback URL it was given, which verifies', async () => {
    world = await startWorld({ manual: true });
    world.config.publicBaseUrl = `http://LocalHost:${world.port}/`;
    const q = memoryQueue();
    app = await startWebhook(world, { enqueue: q.enqueue });
    const callback = statusCallbackUrl(world.config);
    expect(callback).toBe(`http://localhost:${world.port}${STATUS_WEBHOOK_PATH}`);
    const m = await world.api.messages.create({ to: '+15551230001', from: world.config.fromNumber, body: 'hi', statusCallback: callback });
    await settleInOrder(world, m.sid);
    expect(world.fake.callbacks.sent.map((c) => c.responseStatus)).toEqual([204, 204, 204]);
    expect(q.jobs.map((j) => j.job.status)).toEqual(['sent', 'delivered']);
  });

  it('PUBLIC_BASE_URL with its default port written out, or in upper case: a signature over the callback URL SignalWire was given verifies, with or without the port', () => {
    const p = params('delivered');
    for (const written of ['https://relay.example.com:443', 'https://Relay.Example.COM', 'HTTPS://relay.example.com:443/', 'https://relay.example.com']) {
      const config = { publicBaseUrl: written };
      const given = statusCallbackUrl({ ...config } as never);
      expect(given).toBe(`https://relay.example.com${STATUS_WEBHOOK_PATH}`);
      const url = publicBaseUrl(config) + STATUS_WEBHOOK_PATH;
      expect(verifySignature('key', computeSignature('key', given, p), url, p), written).toBe(true);
      expect(verifySignature('key', computeSignature('key', given.replace('.com/', '.com:443/'), p), url, p), `${written}, port written out`).toBe(true);
      expect(verifySignature('key', computeSignature('key', given.replace('https:', 'http:'), p), url, p), `${written}, another scheme`).toBe(false);
    }
  });

  it('does not let a late non-terminal callback undo a terminal one (delivered, then sending)', async () => {
    world = await startWorld({ manual: true });
    const q = memoryQueue();
    const statusMap = new StatusMap();
    app = await startWebhook(world, { enqueue: q.enqueue, statusMap });
    world.fake.callbacks.holding = true;
    const m = await world.api.messages.create({ to: '+15551230001', from: world.config.fromNumber, body: 'hi', statusCallback: statusCallbackUrl(world.config) });
    world.fake.settle(m.sid);
    world.fake.callbacks.release('reverse');
    await waitFor(() => world!.fake.callbacks.sent.length === 3);
    expect(world.fake.callbacks.sent.map((c) => c.params.MessageStatus)).toEqual(['delivered', 'sent', 'sending']);
    expect(statusMap.get(m.sid)?.status).toBe('delivered');
    expect(q.jobs.map((j) => j.job.status)).toEqual(['delivered']);
  });

  it('requires Basic Auth when configured: challenge without credentials, 403 with wrong ones, fake sends them from the URL', async () => {
    world = await startWorld({ manual: true }, { webhookBasicAuth: { user: 'sw', password: 'p@ss:word' } });
    const q = memoryQueue();
    app = await startWebhook(world, { enqueue: q.enqueue });
    const url = world.config.publicBaseUrl + STATUS_WEBHOOK_PATH;
    const p = params('delivered');
    const sig = { 'x-signalwire-signature': computeSignature(world.config.signingKey, url, p) };
    const none = await postForm(world, p, sig);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic/);
    const wrong = await postForm(world, p, { ...sig, authorization: 'Basic ' + Buffer.from('sw:nope').toString('base64') });
    expect(wrong.status).toBe(403);
    expect(q.jobs).toHaveLength(0);
    const m = await world.api.messages.create({ to: '+15551230001', from: world.config.fromNumber, body: 'hi', statusCallback: statusCallbackUrl(world.config) });
    await settleInOrder(world, m.sid);
    expect(world.fake.callbacks.sent.map((c) => c.responseStatus)).toEqual([204, 204, 204]);
    expect(q.jobs.map((j) => j.job.status)).toEqual(['sent', 'delivered']);
  });

  it('answers 503 when the job cannot be enqueued, and a retried callback then enqueues it', async () => {
    world = await startWorld();
    let fail = true;
    const q = memoryQueue();
    app = await startWebhook(world, { enqueue: async (j, d) => (fail ? Promise.reject(new Error('sqs down')) : q.enqueue(j, d)) });
    const url = world.config.publicBaseUrl + STATUS_WEBHOOK_PATH;
    const p = params('undelivered');
    const headers = { 'x-signalwire-signature': computeSignature(world.config.signingKey, url, p) };
    expect((await postForm(world, p, headers)).status).toBe(503);
    fail = false;
    expect((await postForm(world, p, headers)).status).toBe(204);
    expect(q.jobs).toHaveLength(1);
  });

  it('refuses bodies over the limit', async () => {
    world = await startWorld();
    const q = memoryQueue();
    app = await startWebhook(world, { enqueue: q.enqueue, bodyLimit: 1024 });
    const res = await postForm(world, { ...params('delivered'), Body: 'x'.repeat(5000) }, {});
    expect(res.status).toBe(413);
    expect(q.jobs).toHaveLength(0);
  });
});
