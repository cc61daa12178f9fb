import { createHmac } from 'node:crypto';
import { RestClient } from '@signalwire/compatibility-api';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { STATUS_WEBHOOK_PATH, statusCallbackUrl } from '../../../services/app/sms/send.ts';
import { memoryAudit, memoryQueue, startWebhook, startWorld, type SmsWorld } from './helpers.ts';

/** The SDK's own validator, as its entry point exports it. */
const validateRequest = RestClient.validateRequest;

let world: SmsWorld | undefined;
let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  await world?.fake.stop();
  app = undefined;
  world = undefined;
});

type Pairs = Array<[string, string]>;

/**
 * The documented algorithm, written here apart from the product code: the URL, then for each
 * parameter name in sorted order its name and value (each value of a repeated name, in the order
 * sent), HMAC-SHA1 keyed with the Signing Key, base64.
 */
function documentedSignature(signingKey: string, url: string, pairs: Pairs): string {
  const names = [...new Set(pairs.map(([name]) => name))].sort();
  let data = url;
  for (const name of names) for (const [n, v] of pairs) if (n === name) data += n + v;
  return createHmac('sha1', signingKey).update(data, 'utf8').digest('base64');
}

/** The same pairs as the SDK's validator takes them: one key per name, an array for a repeated one. */
function sdkParams(pairs: Pairs): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (const [n, v] of pairs) {
    const prev = out[n];
    out[n] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

const SID = '0f2b7c1e-1111-4222-8333-944455556666';
const base = (status = 'delivered'): Pairs => [['AccountSid', 'acc'], ['Body', ''], ['MessageSid', SID], ['MessageStatus', status], ['To', '+15551230001']];
const encode = (pairs: Pairs) => pairs.map(([n, v]) => `${encodeURIComponent(n)}=${encodeURIComponent(v)}`).join('&');
const post = (w: SmsWorld, body: string, headers: Record<string, string>) =>
  fetch(`${w.config.publicBaseUrl}${STATUS_WEBHOOK_PATH}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
const basic = (user: string, password: string, scheme = 'Basic') => `${scheme} ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('status webhook: form parameters are signed as sent', () => {
  it('regression: __proto__, constructor, toString, repeated keys and empty values are verified as they were sent, and the SDK validator agrees', async () => {
    world = await startWorld();
    const q = memoryQueue();
    app = await startWebhook(world, { enqueue: q.enqueue });
    const url = world.config.publicBaseUrl + STATUS_WEBHOOK_PATH;
    const hostile: Pairs = [...base(), ['__proto__', 'x'], ['constructor', 'y'], ['toString', ''], ['Tag', 'b'], ['Tag', 'a'], ['Empty', ''], ['hasOwnProperty', '1']];
    const signature = documentedSignature(world.config.signingKey, url, hostile);
    expect(validateRequest(world.config.signingKey, signature, url, sdkParams(hostile))).toBe(true);
    // A signed `constructor` (and the rest) is accepted: before, a plain object turned it into [Function, "y"].
    expect((await post(world, encode(hostile), { 'x-signalwire-signature': signature })).status).toBe(204);
    expect(q.jobs).toHaveLength(1);

    // An unsigned `__proto__` added in transit is not dropped: the signature no longer matches.
    const plain = base('failed');
    const plainSig = documentedSignature(world.config.signingKey, url, plain);
    for (const extra of ['__proto__=evil', '__proto__%5Bstatus%5D=x', 'constructor=evil', 'toString=']) {
      const res = await post(world, `${encode(plain)}&${extra}`, { 'x-signalwire-signature': plainSig });
      expect(res.status, extra).toBe(403);
    }
    // Repeated values in another order are another request.
    const swapped: Pairs = [...base('undelivered'), ['Tag', 'a'], ['Tag', 'b']];
    const swappedSig = documentedSignature(world.config.signingKey, url, swapped);
    const reordered: Pairs = [...base('undelivered'), ['Tag', 'b'], ['Tag', 'a']];
    expect((await post(world, encode(reordered), { 'x-signalwire-signature': swappedSig })).status).toBe(403);
    expect((await post(world, encode(swapped), { 'x-signalwire-signature': swappedSig })).status).toBe(204);
    expect((await post(world, `${encode(plain)}`, { 'x-signalwire-signature': plainSig })).status).toBe(204);
  });

  it('accepts a signature over the callback URL with or without its Basic Auth credentials, as the SDK validator does for the URL it is given', async () => {
    world = await startWorld({}, { webhookBasicAuth: { user: 'sw user', password: 'p@ss:word/1' } });
    const q = memoryQueue();
    app = await startWebhook(world, { enqueue: q.enqueue });
    const bare = world.config.publicBaseUrl + STATUS_WEBHOOK_PATH;
    const withCredentials = statusCallbackUrl(world.config);
    expect(withCredentials).not.toBe(bare);
    expect(new URL(withCredentials).username).not.toBe('');
    const auth = { authorization: basic('sw user', 'p@ss:word/1') };
    let status = ['sent', 'delivered'];
    for (const url of [bare, withCredentials]) {
      const pairs = base(status.shift());
      const signature = documentedSignature(world.config.signingKey, url, pairs);
      expect(validateRequest(world.config.signingKey, signature, url, sdkParams(pairs))).toBe(true);
      expect((await post(world, encode(pairs), { ...auth, 'x-signalwire-signature': signature })).status, url).toBe(204);
    }
    expect(q.jobs.map((j) => j.job.status)).toEqual(['sent', 'delivered']);
    // Credentials other than the configured ones in the signed URL are another URL.
    status = ['failed'];
    const other = withCredentials.replace(/^http:\/\/[^@]*@/, 'http://sw%20user:guess@');
    const pairs = base('failed');
    const forged = documentedSignature(world.config.signingKey, other, pairs);
    expect((await post(world, encode(pairs), { ...auth, 'x-signalwire-signature': forged })).status).toBe(403);
  });

  it('accepts the X-Twilio-Signature alias and a Basic scheme in any case', async () => {
    world = await startWorld({}, { webhookBasicAuth: { user: 'sw', password: 'secret' } });
    const q = memoryQueue();
    const audit = memoryAudit();
    app = await startWebhook(world, { enqueue: q.enqueue, audit });
    const url = world.config.publicBaseUrl + STATUS_WEBHOOK_PATH;
    const cases: Array<[string, string, string]> = [['x-twilio-signature', 'basic', 'sent'], ['x-signalwire-signature', 'BASIC', 'delivered']];
    for (const [header, scheme, st] of cases) {
      const pairs = base(st);
      const res = await post(world, encode(pairs), { authorization: basic('sw', 'secret', scheme), [header]: documentedSignature(world.config.signingKey, url, pairs) });
      expect(res.status, `${header} ${scheme}`).toBe(204);
    }
    expect(q.jobs).toHaveLength(2);
    expect(audit.events.filter((e) => e.action === 'auth.failure')).toHaveLength(0);
    // A wrong X-Twilio-Signature is refused like a wrong X-SignalWire-Signature.
    const pairs = base('failed');
    expect((await post(world, encode(pairs), { authorization: basic('sw', 'secret'), 'x-twilio-signature': documentedSignature('wrong-key', url, pairs) })).status).toBe(403);
  });
});
