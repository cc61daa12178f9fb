import { afterEach, describe, expect, it } from 'vitest';
import { SEND_SETTLE_SECONDS, unseal } from '../../../services/app/sms/pendingSend.ts';
import type { PendingSendJob } from '../../../services/app/sms/redactionJob.ts';
import { createRedactionHandler } from '../../../services/app/sms/redactionWorker.ts';
import { createSmsSender } from '../../../services/app/sms/send.ts';
import type { SmsSendClaims } from '../../../services/app/sms/sendClaims.ts';
import { hashId } from '../../../services/core/log/logger.ts';
import { TransportError } from '../../../services/core/transport/errors.ts';
import { memoryApplyLedger } from '../../helpers/ledgers.ts';
import { captureLogger, fastRetry, keylessClaims, memoryAudit, memoryQueue, startWorld, waitFor, type SmsWorld } from './helpers.ts';

// Each send enqueues a job before its create call, when no sid exists yet: a process that stops
// between the call and the fallback job (which needs the sid) must not leave the message unredacted,
// since its status callback, sent to the stopped process, may be lost too.

let world: SmsWorld | undefined;
afterEach(async () => {
  await world?.fake.stop();
  world = undefined;
});

const TO = '+15551230091';
const BODY = 'Your biopsy results are ready, Quimby';
const abort = () => new AbortController().signal;

function parts(w: SmsWorld, clock: { skew: number }) {
  const queue = memoryQueue();
  const audit = memoryAudit();
  const log = captureLogger();
  const settled = memoryApplyLedger();
  const now = () => new Date(Date.now() + clock.skew);
  const handler = createRedactionHandler({ config: w.config, api: w.api, audit, audited: memoryApplyLedger(), enqueue: queue.enqueue, settled, claims: keylessClaims, logger: log.logger, retry: fastRetry, now });
  return { queue, audit, log, settled, handler };
}

type Parts = ReturnType<typeof parts>;

// A send whose process "dies" right after its create call: the fallback job's enqueue never returns. Resolves with
// the message SignalWire made; the job enqueued before the call is in `p.queue.pending`.
async function stoppedSend(w: SmsWorld, p: Parts, ctx: { actor?: string } = {}) {
  const stopped = new Promise<void>(() => undefined);
  const send = createSmsSender({
    config: w.config, api: w.api, claims: keylessClaims, settled: p.settled, audit: p.audit, retry: fastRetry,
    enqueue: async (job, delay) => (job.trigger === 'pending' ? p.queue.enqueue(job, delay) : stopped),
  });
  void send({ to: TO, body: BODY }, ctx);
  await waitFor(() => w.fake.store.messages.size === 1, 5000, 'the create call');
  return [...w.fake.store.messages.values()][0];
}

// A redaction worker whose clock is past the send's settle time.
function settledWorker(w: SmsWorld, p: Parts, overrides: Partial<Parameters<typeof createRedactionHandler>[0]> = {}) {
  return createRedactionHandler({
    config: w.config, api: w.api, audit: p.audit, audited: memoryApplyLedger(), enqueue: p.queue.enqueue, settled: p.settled, claims: keylessClaims, retry: fastRetry,
    now: () => new Date(Date.now() + (SEND_SETTLE_SECONDS + 1) * 1000), ...overrides,
  });
}

describe('the job a send enqueues before its create call', () => {
  it('a send stopped between its create call and its fallback job: once the send settled, its job finds the message, enqueues its fallback job, which redacts it, and writes its sms.sent line, marked recovered', async () => {
    world = await startWorld({ manual: true });
    const clock = { skew: 0 };
    const p = parts(world, clock);
    const message = await stoppedSend(world, p, { actor: 'token:nurse-app' });
    expect(p.queue.pending).toHaveLength(1);
    const { job, delaySeconds } = p.queue.pending[0]!;
    expect(delaySeconds).toBeGreaterThan(SEND_SETTLE_SECONDS);
    // The number is sealed: the queue never holds it in clear.
    expect(JSON.stringify(job)).not.toContain('5551230091');
    expect(JSON.stringify(job)).not.toContain('Quimby');
    expect(unseal(world.config.hmacKey, job.toSealed)).toBe(TO);
    expect(p.queue.jobs).toHaveLength(0);

    // Before the send settled (its create call may still run): re-delayed, SignalWire not asked.
    const asked = world.fake.requests.length;
    expect(await p.handler({ body: JSON.stringify(job) }, abort())).toMatchObject({ status: 'retry', reason: 'send-not-settled' });
    expect(world.fake.requests.length).toBe(asked);

    clock.skew = (SEND_SETTLE_SECONDS + 1) * 1000;
    expect(await p.handler({ body: JSON.stringify(job) }, abort())).toEqual({ status: 'done' });
    expect(p.queue.jobs.map((j) => [j.job.sid, j.job.trigger, j.delaySeconds])).toEqual([[message!.sid, 'fallback', 0]]);
    world.fake.settle(message!.sid);
    clock.skew = 0;
    await p.queue.runDue(p.handler);
    expect(world.fake.message(message!.sid)!.body).toBe('');
    expect(p.audit.events.map((e) => e.action)).toEqual(['sms.sending', 'sms.sent', 'sms.redacted']);
    expect(p.audit.events[1]).toMatchObject({
      actor: 'token:nurse-app', outcome: 'success', resourceId: hashId(world.config.hmacKey, message!.sid),
      details: { toHash: hashId(world.config.hmacKey, TO), media: 0, recovered: true, copy: true },
    });
    expect(p.log.text()).not.toContain('5551230091');
    expect(p.log.text()).not.toContain('Quimby');
  });

  it('two messages to the number in the send\'s time that their text does not tell apart: both get their fallback job, neither is taken as the send\'s', async () => {
    world = await startWorld({ manual: true });
    const p = parts(world, { skew: 0 });
    await stoppedSend(world, p);
    // Another send of the same text to the same number, by another process at the same time.
    await world.api.messages.create({ to: TO, from: world.config.fromNumber, body: BODY });
    // A third, with another text: told apart while its body is there.
    await world.api.messages.create({ to: TO, from: world.config.fromNumber, body: 'Your appointment is tomorrow' });
    const worker = settledWorker(world, p);
    expect(await worker({ body: JSON.stringify(p.queue.pending[0]!.job) }, abort())).toEqual({ status: 'done' });
    expect(p.queue.jobs).toHaveLength(3);
    expect(p.audit.events.map((e) => e.action)).toEqual(['sms.sending']);
  });

  it('a queue that does not take the fallback job it found: retried, with the queue named as the reason', async () => {
    world = await startWorld({ manual: true });
    const p = parts(world, { skew: 0 });
    await stoppedSend(world, p);
    const queueDown = async (): Promise<void> => Promise.reject(new TransportError('CR_TRANSPORT_SEND_FAILED', 'SQS did not accept message'));
    const worker = settledWorker(world, p, { config: { ...world.config, redactionWindowSeconds: 3600 }, enqueue: queueDown });
    expect(await worker({ body: JSON.stringify(p.queue.pending[0]!.job) }, abort())).toMatchObject({ status: 'retry', reason: 'queue-unavailable' });
    expect(p.audit.events.map((e) => e.action)).toEqual(['sms.sending']);
  });

  it('a send that finished marks itself settled: its job then asks SignalWire nothing', async () => {
    world = await startWorld({ manual: true });
    const p = parts(world, { skew: (SEND_SETTLE_SECONDS + 1) * 1000 });
    const send = createSmsSender({ config: world.config, api: world.api, claims: keylessClaims, settled: p.settled, audit: p.audit, enqueue: p.queue.enqueue, retry: fastRetry });
    const sent = await send({ to: TO, body: BODY });
    expect(p.queue.jobs.map((j) => j.job.sid)).toEqual([sent.sid]);
    const { job } = p.queue.pending[0]!;
    expect(p.settled.done.has(job.send)).toBe(true);
    const asked = world.fake.requests.length;
    expect(await p.handler({ body: JSON.stringify(job) }, abort())).toEqual({ status: 'done' });
    expect(world.fake.requests.length).toBe(asked);
    expect(p.queue.jobs).toHaveLength(1);
  });

  it('SignalWire refused the message: the send is settled too; after a failure that may have sent it, the job looks', async () => {
    world = await startWorld({ manual: true });
    const p = parts(world, { skew: (SEND_SETTLE_SECONDS + 1) * 1000 });
    const send = createSmsSender({ config: world.config, api: world.api, claims: keylessClaims, settled: p.settled, audit: p.audit, enqueue: p.queue.enqueue, retry: fastRetry });
    world.fake.faults.inject({ count: 1, status: 400 });
    await expect(send({ to: TO, body: BODY })).rejects.toMatchObject({ code: 'CR_SMS_PROVIDER_REJECTED' });
    world.fake.faults.inject({ count: 1, status: 500 });
    await expect(send({ to: TO, body: BODY })).rejects.toMatchObject({ code: 'CR_SMS_PROVIDER_UNAVAILABLE' });
    const [refused, unsure] = p.queue.pending.map((q) => q.job);
    expect(p.settled.done.has(refused!.send)).toBe(true);
    expect(p.settled.done.has(unsure!.send)).toBe(false);
    expect(await p.handler({ body: JSON.stringify(unsure) }, abort())).toEqual({ status: 'done' });
    // The fake made no message for the 500: nothing found, nothing to redact.
    expect(p.queue.jobs).toHaveLength(0);
  });

  it('a queue that does not take the job sends nothing: 503 with Retry-After, the Idempotency-Key freed, the failure audited', async () => {
    world = await startWorld({ manual: true });
    const audit = memoryAudit();
    const failed: boolean[] = [];
    const claims: SmsSendClaims = { claim: async () => ({ kind: 'claimed', pk: 'smsidem#nurse-app#k1', lease: 1 }), sent: async () => undefined, failed: async (_c, maybeSent) => void failed.push(maybeSent), recovered: async () => undefined };
    const send = createSmsSender({ config: world.config, api: world.api, claims, settled: memoryApplyLedger(), audit, enqueue: async () => Promise.reject(new Error('queue down')), retry: fastRetry });
    await expect(send({ to: TO, body: BODY }, { actor: 'nurse-app', idempotencyKey: 'k1' })).rejects.toMatchObject({ code: 'CR_SMS_REDACTION_QUEUE_UNAVAILABLE', status: 503, details: { retryAfter: 5 }, message: expect.stringContaining('was not sent') });
    expect(world.fake.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
    expect(failed).toEqual([false]);
    expect(audit.events.map((e) => [e.action, e.outcome, e.details?.reason])).toEqual([['sms.sending', 'success', undefined], ['sms.sent', 'failure', 'redaction-queue-unavailable']]);
  });

  it('quarantines a job whose sealed number was altered or sealed under another key', async () => {
    world = await startWorld({ manual: true });
    const p = parts(world, { skew: (SEND_SETTLE_SECONDS + 1) * 1000 });
    const send = createSmsSender({ config: world.config, api: world.api, claims: keylessClaims, settled: memoryApplyLedger(), audit: p.audit, enqueue: p.queue.enqueue, retry: fastRetry });
    await send({ to: TO, body: BODY });
    const job = p.queue.pending[0]!.job;
    const flip = (s: string): string => s.slice(0, -2) + (s.at(-2) === 'A' ? 'B' : 'A') + s.at(-1);
    const altered: PendingSendJob = { ...job, toSealed: flip(job.toSealed) };
    expect(await p.handler({ body: JSON.stringify(altered) }, abort())).toEqual({ status: 'quarantine', reason: 'CR_SMS_JOB_INVALID' });
    const other = createRedactionHandler({ config: { ...world.config, hmacKey: 'another-key' }, api: world.api, audit: p.audit, audited: memoryApplyLedger(), enqueue: p.queue.enqueue, settled: memoryApplyLedger(), claims: keylessClaims, retry: fastRetry, now: () => new Date(Date.now() + (SEND_SETTLE_SECONDS + 1) * 1000) });
    expect(await other({ body: JSON.stringify(job) }, abort())).toEqual({ status: 'quarantine', reason: 'CR_SMS_JOB_INVALID' });
    expect(await p.handler({ body: JSON.stringify({ ...job, toSealed: TO }) }, abort())).toEqual({ status: 'quarantine', reason: 'CR_SMS_JOB_INVALID' });
  });
});
