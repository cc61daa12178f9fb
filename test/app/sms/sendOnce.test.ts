import { afterEach, describe, expect, it } from 'vitest';
import { SEND_SETTLE_SECONDS, unseal } from '../../../services/app/sms/pendingSend.ts';
import { createRedactionHandler } from '../../../services/app/sms/redactionWorker.ts';
import { createSmsSender } from '../../../services/app/sms/send.ts';
import { createSmsSendClaims } from '../../../services/app/sms/sendClaims.ts';
import { hashId } from '../../../services/core/log/logger.ts';
import { useTestStateTable } from '../../helpers/sqs.ts';
import { memoryApplyLedger } from '../../helpers/ledgers.ts';
import { fastRetry, memoryAudit, memoryQueue, startWorld, waitFor, type SmsWorld } from './helpers.ts';

// POST /v1/messages under an Idempotency-Key: SignalWire takes no key of its own, so the relay
// sends a message once per key across the fleet, and never again once a create call may have
// reached SignalWire without its answer being recorded.

const state = useTestStateTable('app');
let world: SmsWorld | undefined;
afterEach(async () => {
  await world?.fake.stop();
  world = undefined;
});

const TO = '+15551230077';
const BODY = 'Your results are ready, Ackley';
let n = 0;
const freshKey = (): string => `sms-${Date.now()}-${++n}`;

function sender(w: SmsWorld, clock?: { t: number }) {
  const audit = memoryAudit();
  const queue = memoryQueue();
  const claims = createSmsSendClaims({ table: state.table, ttlSeconds: 3600, leaseMs: 30_000, ...(clock ? { now: () => clock.t } : {}) });
  const settled = memoryApplyLedger();
  const send = createSmsSender({ config: w.config, api: w.api, enqueue: queue.enqueue, audit, claims, settled, retry: fastRetry });
  return { audit, queue, claims, settled, send };
}

/**
 * A keyed sender whose claims record the sid with `sent` (a failure, or a process that stops there), a second sender
 * on the real claims (a retry, here or elsewhere), and the redaction worker past the send's settle time.
 */
function keyedSend(w: SmsWorld, sent: () => Promise<void>) {
  const clock = { t: Date.now() };
  const audit = memoryAudit();
  const queue = memoryQueue();
  const claims = createSmsSendClaims({ table: state.table, ttlSeconds: 3600, leaseMs: 30_000, now: () => clock.t });
  const settled = memoryApplyLedger();
  const common = { config: w.config, api: w.api, audit, settled, retry: fastRetry, enqueue: queue.enqueue };
  return {
    clock,
    queue,
    settled,
    key: freshKey(),
    send: createSmsSender({ ...common, claims: { ...claims, sent } }),
    again: createSmsSender({ ...common, claims }),
    worker: (workerAudit: ReturnType<typeof memoryAudit>) =>
      createRedactionHandler({ config: w.config, api: w.api, audit: workerAudit, audited: memoryApplyLedger(), enqueue: queue.enqueue, settled, claims, retry: fastRetry, now: () => new Date(Date.now() + (SEND_SETTLE_SECONDS + 1) * 1000) }),
  };
}

describe('sending an SMS under an Idempotency-Key', () => {
  it('a retry, here or at another instance, answers the same sid and sends nothing; it enqueues the fallback job and writes sms.sent again, marked copy', async () => {
    world = await startWorld({ manual: true });
    const a = sender(world);
    const b = sender(world);
    const key = freshKey();
    const first = await a.send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: key });
    expect(first.replayed).toBe(false);
    const again = await a.send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: key });
    const elsewhere = await b.send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: key });
    expect([again, elsewhere]).toEqual([
      { sid: first.sid, status: first.status, replayed: true },
      { sid: first.sid, status: first.status, replayed: true },
    ]);
    expect(world.fake.store.messages.size).toBe(1);
    expect(world.fake.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    const sidHash = hashId(world.config.hmacKey, first.sid);
    // One sms.sending line, for the one create call; each answer its sms.sent line.
    expect(a.audit.events.map((e) => [e.action, e.resourceId, (e.details as { copy?: boolean }).copy ?? false])).toEqual([
      ['sms.sending', hashId(world.config.hmacKey, TO), false],
      ['sms.sent', sidHash, false],
      ['sms.sent', sidHash, true],
    ]);
    expect(a.audit.events[0]).toMatchObject({ outcome: 'success', details: { keyed: true, media: 0 } });
    expect(b.audit.events).toMatchObject([{ action: 'sms.sent', outcome: 'success', resourceId: sidHash, details: { copy: true, toHash: hashId(world.config.hmacKey, TO) } }]);
    // The fallback job again with each answer, its window from the first send: jobs are idempotent.
    expect([...a.queue.jobs, ...b.queue.jobs].map((j) => [j.job.sid, j.job.firstSeenAt])).toEqual(Array(3).fill([first.sid, a.queue.jobs[0]!.job.firstSeenAt]));
    // Another token's same key is its own.
    const other = await a.send({ to: TO, body: BODY }, { actor: 'other-app', idempotencyKey: key });
    expect(other.sid).not.toBe(first.sid);
    expect(JSON.stringify([a.audit.events, b.audit.events])).not.toContain('5551230077');
  });

  it('refuses another body under a used key (409) and a malformed key (400), sending nothing', async () => {
    world = await startWorld({ manual: true });
    const { send } = sender(world);
    const key = freshKey();
    await send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: key });
    await expect(send({ to: TO, body: `${BODY}!` }, { actor: 'nurse-app', idempotencyKey: key })).rejects.toMatchObject({ code: 'CR_IDEMPOTENCY_KEY_REUSED', status: 409 });
    await expect(send({ to: '+15551230078', body: BODY }, { actor: 'nurse-app', idempotencyKey: key })).rejects.toMatchObject({ code: 'CR_IDEMPOTENCY_KEY_REUSED' });
    await expect(send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: 'has space' })).rejects.toMatchObject({ code: 'CR_IDEMPOTENCY_KEY_INVALID', status: 400 });
    expect(world.fake.store.messages.size).toBe(1);
  });

  it('while another request with the key is sending: 409 with Retry-After; once that request stopped without an answer: 409 outcome unknown, never a second message', async () => {
    world = await startWorld({ manual: true });
    const clock = { t: Date.now() };
    const { send, claims } = sender(world, clock);
    const key = freshKey();
    // A request that claimed the key and then died inside its create call (or before recording its sid).
    const digest = hashId(world.config.hmacKey, JSON.stringify([TO, BODY, []]));
    expect(await claims.claim('nurse-app', key, digest)).toMatchObject({ kind: 'claimed' });
    const busy = send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: key });
    await expect(busy).rejects.toMatchObject({ code: 'CR_SMS_SEND_IN_PROGRESS', status: 409, details: { retryAfter: 30 } });
    clock.t += 31_000;
    await expect(send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: key })).rejects.toMatchObject({ code: 'CR_SMS_OUTCOME_UNKNOWN', status: 409 });
    expect(world.fake.store.messages.size).toBe(0);
  });

  it('SignalWire said no (4xx, or 503 after retries): the key is free again; a failure that may have sent it (a 500): outcome unknown', async () => {
    world = await startWorld({ manual: true });
    const { send, audit } = sender(world);
    const key = freshKey();
    world.fake.faults.inject({ count: 1, status: 400 });
    await expect(send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: key })).rejects.toMatchObject({ code: 'CR_SMS_PROVIDER_REJECTED' });
    world.fake.faults.inject({ count: 10, status: 503 });
    await expect(send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: key })).rejects.toMatchObject({ code: 'CR_SMS_PROVIDER_UNAVAILABLE', message: expect.stringContaining('was not sent') });
    world.fake.faults.clear();
    const sent = await send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: key });
    expect(world.fake.message(sent.sid)).toBeDefined();

    const unsure = freshKey();
    world.fake.faults.inject({ count: 1, status: 500 });
    await expect(send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: unsure })).rejects.toMatchObject({ code: 'CR_SMS_PROVIDER_UNAVAILABLE', message: expect.stringContaining('may have been sent') });
    await expect(send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: unsure })).rejects.toMatchObject({ code: 'CR_SMS_OUTCOME_UNKNOWN' });
    expect(world.fake.store.messages.size).toBe(1);
    expect(audit.events.filter((e) => e.outcome === 'failure').map((e) => (e.details as { maybeSent?: boolean }).maybeSent ?? false)).toEqual([false, false, true]);
  });

  it('an sms.sending line that cannot be written sends nothing and frees the key: the retry sends once', async () => {
    world = await startWorld({ manual: true });
    const s = sender(world);
    const record = s.audit.record.bind(s.audit);
    let failSending = true;
    s.audit.record = async (event) => {
      if (failSending && event.action === 'sms.sending') throw new Error('disk full');
      return record(event);
    };
    const key = freshKey();
    await expect(s.send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: key })).rejects.toThrow('disk full');
    expect(world.fake.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
    expect(s.audit.events).toEqual([]);
    failSending = false;
    const sent = await s.send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: key });
    expect(sent.replayed).toBe(false);
    expect(world.fake.store.messages.size).toBe(1);
    expect(s.audit.events.map((e) => e.action)).toEqual(['sms.sending', 'sms.sent']);
  });

  it('a keyed send whose sid could not be recorded under the key (state table down) is answered 202, and not marked settled: its pending job answers the key, so a retry gets the sid, not outcome unknown', async () => {
    world = await startWorld({ manual: true });
    const k = keyedSend(world, () => Promise.reject(Object.assign(new Error('state table unreachable'), { name: 'TimeoutError' })));
    const first = await k.send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: k.key });
    const { job } = k.queue.pending[0]!;
    expect(k.settled.done.has(job.send), 'not settled: the key does not know the sid').toBe(false);
    k.clock.t += 31_000;
    await expect(k.again({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: k.key })).rejects.toMatchObject({ code: 'CR_SMS_OUTCOME_UNKNOWN' });
    expect(await k.worker(memoryAudit())({ body: JSON.stringify(job) }, new AbortController().signal)).toEqual({ status: 'done' });
    expect(await k.again({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: k.key })).toMatchObject({ sid: first.sid, replayed: true });
    expect(world.fake.store.messages.size).toBe(1);
  });

  it('a keyed send stopped after its create call answers outcome unknown until its pending job found the message; then the sid, and nothing sent again', async () => {
    world = await startWorld({ manual: true });
    // The process "dies" right after the create call, before it records the sid under the key.
    const { clock, queue, send, again, worker, key } = keyedSend(world, () => new Promise<void>(() => undefined));
    void send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: key });
    await waitFor(() => world!.fake.store.messages.size === 1, 5000, 'the create call');
    const [message] = [...world.fake.store.messages.values()];
    clock.t += 31_000;
    await expect(again({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: key })).rejects.toMatchObject({ code: 'CR_SMS_OUTCOME_UNKNOWN' });

    const workerAudit = memoryAudit();
    const handler = worker(workerAudit);
    const { job } = queue.pending[0]!;
    // The claim names the client's key: sealed, as the number.
    expect(unseal(world.config.hmacKey, job.claim!.pkSealed)).toBe(`smsidem#nurse-app#${key}`);
    expect(JSON.stringify(job)).not.toContain(key);
    expect(await handler({ body: JSON.stringify(job) }, new AbortController().signal)).toEqual({ status: 'done' });
    expect(workerAudit.events).toMatchObject([{ action: 'sms.sent', actor: 'nurse-app', resourceId: hashId(world.config.hmacKey, message!.sid), details: { recovered: true, copy: true } }]);

    expect(await again({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: key })).toEqual({ sid: message!.sid, status: message!.status, replayed: true });
    expect(world.fake.store.messages.size).toBe(1);
    expect(world.fake.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });
});
