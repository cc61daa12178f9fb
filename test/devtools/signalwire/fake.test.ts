import { createServer, type Server } from 'node:http';
import { RestClient } from '@signalwire/compatibility-api';
import { afterEach, describe, expect, it } from 'vitest';
import { createSignalWireClient } from '../../../services/app/sms/client.ts';
import { startFakeSignalWire, type FakeSignalWire } from '../../../services/devtools/signalwire/index.ts';

let fake: FakeSignalWire | undefined;
let sink: Server | undefined;
afterEach(async () => {
  await fake?.stop();
  await new Promise((r) => (sink ? sink.close(r) : r(undefined)));
  fake = undefined;
  sink = undefined;
});

const auth = (f: FakeSignalWire, token = f.token) => ({ authorization: 'Basic ' + Buffer.from(`${f.projectId}:${token}`).toString('base64') });
const form = (o: Record<string, string | string[]>) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
  return p.toString();
};
const post = (f: FakeSignalWire, path: string, body: Record<string, string | string[]>, headers = auth(f)) =>
  fetch(f.url + path, { method: 'POST', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, body: form(body) });
const wait = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('fake SignalWire', () => {
  it('requires Basic Auth with the project id and token, and a matching AccountSid', async () => {
    fake = await startFakeSignalWire();
    const path = `/2010-04-01/Accounts/${fake.projectId}/Messages.json`;
    const noAuth = await fetch(fake.url + path);
    expect(noAuth.status).toBe(401);
    expect(await noAuth.json()).toMatchObject({ code: 20003, status: 401, more_info: expect.any(String), message: expect.any(String) });
    expect((await fetch(fake.url + path, { headers: auth(fake, 'wrong') })).status).toBe(401);
    expect((await fetch(fake.url + `/2010-04-01/Accounts/other/Messages.json`, { headers: auth(fake) })).status).toBe(401);
    expect((await fetch(fake.url + path, { headers: auth(fake) })).status).toBe(200);
    expect((await fetch(fake.url + '/api/laml' + path, { headers: auth(fake) })).status).toBe(200);
  });

  it('creates messages with media, runs the lifecycle by timers, and refuses redaction while in progress', async () => {
    fake = await startFakeSignalWire({ manual: true });
    const base = `/api/laml/2010-04-01/Accounts/${fake.projectId}/Messages`;
    const res = await post(fake, `${base}.json`, { To: '+15551230001', From: '+15550009999', Body: 'hello', MediaUrl: ['https://m.example/a.jpg', 'https://m.example/b.png'] });
    expect(res.status).toBe(201);
    const msg = (await res.json()) as { sid: string; status: string; num_media: string; uri: string };
    expect(msg).toMatchObject({ status: 'queued', num_media: '2' });
    expect(msg.uri).toBe(`${base}/${msg.sid}.json`);
    expect((await post(fake, `${base}/${msg.sid}.json`, { Body: '' })).status).toBe(400);
    const del = await fetch(fake.url + `${base}/${msg.sid}.json`, { method: 'DELETE', headers: auth(fake) });
    expect(del.status).toBe(400);
    expect(await del.json()).toMatchObject({ code: 20009 });
    expect(fake.step(msg.sid)).toBe('sending');
    expect((await post(fake, `${base}/${msg.sid}.json`, { Body: '' })).status).toBe(400);
    expect(fake.settle(msg.sid)).toBe('delivered');
    expect((await post(fake, `${base}/${msg.sid}.json`, { Body: 'not empty' })).status).toBe(400);
    const ok = await post(fake, `${base}/${msg.sid}.json`, { Body: '' });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { body: string }).body).toBe('');
  });

  it('ends messages per destination number or per next message, driven by timers', async () => {
    fake = await startFakeSignalWire({ stepMs: 5 });
    const api = createSignalWireClient({ projectId: fake.projectId, apiToken: fake.token, spaceUrl: fake.url, allowInsecure: true });
    fake.setOutcome('+15551230002', 'undelivered');
    fake.nextOutcome('failed');
    const a = await api.messages.create({ to: '+15551230001', from: '+15550009999', body: 'x' });
    const b = await api.messages.create({ to: '+15551230002', from: '+15550009999', body: 'x' });
    const c = await api.messages.create({ to: '+15551230003', from: '+15550009999', body: 'x' });
    await wait(() => fake!.message(a.sid)!.status === 'failed' && fake!.message(b.sid)!.status === 'undelivered' && fake!.message(c.sid)!.status === 'delivered');
  });

  it('keeps media when a message is deleted, as SignalWire does', async () => {
    fake = await startFakeSignalWire({ manual: true });
    const api = createSignalWireClient({ projectId: fake.projectId, apiToken: fake.token, spaceUrl: fake.url, allowInsecure: true });
    const m = await api.messages.create({ to: '+15551230001', from: '+15550009999', body: 'x', mediaUrl: ['https://m.example/a.jpg'] });
    fake.settle(m.sid);
    await api.messages(m.sid).remove();
    expect(fake.message(m.sid)).toBeUndefined();
    expect(fake.mediaOf(m.sid)).toHaveLength(1);
    const page = await api.messages(m.sid).media.page();
    expect(page.instances).toHaveLength(1);
    await api.messages(m.sid).media(page.instances[0]!.sid).remove();
    expect(fake.mediaOf(m.sid)).toHaveLength(0);
  });

  it('pages with next_page_uri, PageToken and DateSent filters through the SDK', async () => {
    fake = await startFakeSignalWire();
    const day = (d: number) => new Date(Date.UTC(2024, 0, d, 12));
    for (let d = 1; d <= 10; d++) for (let i = 0; i < 7; i++) fake.seed({ date: day(d) });
    const api = createSignalWireClient({ projectId: fake.projectId, apiToken: fake.token, spaceUrl: fake.url, allowInsecure: true });
    let page = await api.messages.page({ pageSize: 10, dateSentAfter: day(3), dateSentBefore: day(5) });
    const sids: string[] = [];
    for (;;) {
      sids.push(...page.instances.map((m) => m.sid));
      if (!page.nextPageUrl) break;
      expect(page.nextPageUrl).toContain('PageToken=PA');
      page = await api.messages.getPage(page.nextPageUrl);
    }
    expect(sids).toHaveLength(21);
    expect(new Set(sids).size).toBe(21);
    const q = fake.requests.find((r) => r.path.endsWith('Messages.json') && r.method === 'GET')!.query;
    expect(Object.keys(q)).toEqual(expect.arrayContaining(['DateSent>', 'DateSent<', 'PageSize']));
  });

  it('injects 429 with Retry-After, 5xx bursts and non-JSON bodies, and records requests', async () => {
    fake = await startFakeSignalWire();
    const path = fake.url + `/2010-04-01/Accounts/${fake.projectId}/Messages.json`;
    fake.faults.inject({ count: 1, status: 429, retryAfter: 3 });
    fake.faults.inject({ count: 2, status: 503 });
    fake.faults.inject({ count: 1, status: 502, nonJson: true });
    const r1 = await fetch(path, { headers: auth(fake) });
    expect([r1.status, r1.headers.get('retry-after')]).toEqual([429, '3']);
    expect(((await r1.json()) as { code: number }).code).toBe(20429);
    expect((await fetch(path, { headers: auth(fake) })).status).toBe(503);
    expect((await fetch(path, { headers: auth(fake) })).status).toBe(503);
    const r4 = await fetch(path, { headers: auth(fake) });
    expect(r4.status).toBe(502);
    expect(await r4.text()).toMatch(/^<html>/);
    expect((await fetch(path, { headers: auth(fake) })).status).toBe(200);
    expect(fake.requests.map((r) => r.status)).toEqual([429, 503, 503, 502, 200]);
  });

  it('holds matching requests (a slow API) until released, then answers them as usual', async () => {
    fake = await startFakeSignalWire();
    const list = fake.url + `/2010-04-01/Accounts/${fake.projectId}/Messages.json`;
    const release = fake.faults.hold({ method: 'GET', path: /\/Messages\.json$/ });
    let answered = false;
    const held = fetch(list, { headers: auth(fake) }).then((r) => ((answered = true), r));
    // A request the hold does not match is answered meanwhile.
    const other = await fetch(list, { method: 'POST', headers: { ...auth(fake), 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    expect(other.status).toBe(400);
    await wait(() => fake!.requests.length === 2);
    expect(answered).toBe(false);
    release();
    expect((await held).status).toBe(200);
    expect((await fetch(list, { headers: auth(fake) })).status).toBe(200);
  });

  it('signs status callbacks so that the SDK\'s own validateRequest accepts them, and can hold, reorder, drop and repeat them', async () => {
    const got: { params: Record<string, string>; sig: string | undefined; twilioSig: string | undefined }[] = [];
    sink = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        got.push({ params: Object.fromEntries(new URLSearchParams(body)), sig: req.headers['x-signalwire-signature'] as string, twilioSig: req.headers['x-twilio-signature'] as string });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => sink!.listen(0, '127.0.0.1', r));
    const callback = `http://127.0.0.1:${(sink.address() as { port: number }).port}/cb?tenant=a`;
    fake = await startFakeSignalWire({ manual: true });
    const api = createSignalWireClient({ projectId: fake.projectId, apiToken: fake.token, spaceUrl: fake.url, allowInsecure: true });
    const m = await api.messages.create({ to: '+15551230001', from: '+15550009999', body: '', mediaUrl: ['https://m.example/a.jpg'], statusCallback: callback });
    // Posted as they happen, callbacks can arrive in any order; held and released in order, they
    // arrive in the order the lifecycle made them.
    fake.callbacks.holding = true;
    fake.settle(m.sid);
    fake.callbacks.release('fifo');
    await wait(() => got.length === 3);
    expect(got.map((g) => g.params.MessageStatus)).toEqual(['sending', 'sent', 'delivered']);
    for (const g of got) {
      expect(g.params.Body).toBe('');
      expect(g.sig).toBe(g.twilioSig);
      expect(RestClient.validateRequest(fake.signingKey, g.sig!, callback, g.params)).toBe(true);
      expect(RestClient.validateRequest(fake.token, g.sig!, callback, g.params)).toBe(false);
    }
    got.length = 0;
    fake.callbacks.holding = true;
    const m2 = await api.messages.create({ to: '+15551230001', from: '+15550009999', body: 'x', statusCallback: callback });
    fake.settle(m2.sid);
    fake.callbacks.release('reverse');
    await wait(() => got.length === 3);
    expect(got.map((g) => g.params.MessageStatus)).toEqual(['delivered', 'sent', 'sending']);
    got.length = 0;
    fake.callbacks.dropNext(2);
    fake.callbacks.repeat = 2;
    const m3 = await api.messages.create({ to: '+15551230001', from: '+15550009999', body: 'x', statusCallback: callback });
    fake.settle(m3.sid);
    await wait(() => got.length === 2);
    await fake.callbacks.idle();
    expect(got.map((g) => g.params.MessageStatus)).toEqual(['delivered', 'delivered']);
    expect(fake.callbacks.sent.filter((r) => r.dropped).length).toBe(2);
  });
});
