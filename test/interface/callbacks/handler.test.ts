// The callback handler's decisions on each answer, and the retry schedule (pure: no timers).
import { describe, expect, it } from 'vitest';
import { AuditError } from '../../../services/core/audit/errors.ts';
import type { AuditEvent } from '../../../services/core/audit/types.ts';
import type { ReceivedMessage } from '../../../services/core/transport/consumerTypes.ts';
import { callbackRetryDelay, createCallbackHandler } from '../../../services/interface/callbacks/handler.ts';
import { buildCallbackJob, type CallbackJob } from '../../../services/interface/callbacks/job.ts';
import type { CallbackLedger } from '../../../services/interface/callbacks/ledger.ts';
import type { CallbackOutcome } from '../../../services/interface/callbacks/metrics.ts';
import type { CallbackAttempt } from '../../../services/interface/callbacks/post.ts';
import { readCallbackSecrets } from '../../../services/interface/callbacks/secrets.ts';
import type { WebhookHeaders } from '../../../services/interface/callbacks/sign.ts';
import type { CallbackTarget, CallbackTargets } from '../../../services/interface/callbacks/targets.ts';
import { captureLogger } from '../../helpers/logs.ts';
import { newWhsec, verifyWithReference } from '../../helpers/webhookReceiver.ts';

const secret = newWhsec();
const target: CallbackTarget = { partner: 'acme-health', url: new URL('https://hooks.acme.example/cb'), secrets: readCallbackSecrets('mem', () => secret) };
const targets: CallbackTargets = { get: (p) => (p === 'acme-health' ? target : undefined), size: 1, prepare: () => () => undefined };
const job: CallbackJob = buildCallbackJob({ submissionId: '0192f0a4-2222-7aaa-8bbb-0123456789ab', partner: 'acme-health', status: 'held', at: '2026-11-30T07:00:00Z' });
const message = (receiveCount: number, body = JSON.stringify(job)): ReceivedMessage => ({ messageId: 'm1', body, attributes: {}, envelopeId: undefined, receiveCount, sentAt: undefined, queue: 'interface-partner-callbacks' });
const signal = (): AbortSignal => new AbortController().signal;

/** The ledger of one process: attempts counted from `firstAttempt`, finished callbacks remembered. */
function memoryLedger(firstAttempt: number): CallbackLedger & { finished: Map<string, string> } {
  const attempts = new Map<string, number>();
  const finished = new Map<string, string>();
  const statuses = new Map<string, number>();
  return {
    finished,
    async begin(id) {
      const state = finished.get(id);
      if (state) return { status: 'finished', state, httpStatus: statuses.get(id)! };
      const attempt = (attempts.get(id) ?? firstAttempt - 1) + 1;
      attempts.set(id, attempt);
      return { status: 'go', attempt };
    },
    async finish(id, state, httpStatus) {
      finished.set(id, state);
      statuses.set(id, httpStatus);
    },
    async abandon() {},
    async failed() {},
  };
}

/** `failWrites`: how many audit writes fail first (a trail that could not write, or a crash before the line). */
function setup(answers: CallbackAttempt[], maxAttempts = 3, firstAttempt = 1, failWrites = 0) {
  const sent: Array<{ url: URL; headers: WebhookHeaders; body: string }> = [];
  const events: AuditEvent[] = [];
  const counted: CallbackOutcome[] = [];
  const log = captureLogger('interface');
  const ledger = memoryLedger(firstAttempt);
  const handler = createCallbackHandler({
    targets,
    post: async (url, headers, body) => {
      sent.push({ url, headers, body });
      return answers.shift() ?? { kind: 'answered', status: 200 };
    },
    ledger,
    audit: {
      record: async (e) => {
        if (failWrites-- > 0) throw new AuditError('CR_AUDIT_WRITE_FAILED', 'the trail could not be written');
        events.push(e);
      },
    },
    logger: log.logger,
    metrics: { inc: (o) => void counted.push(o), observeAttempt: () => undefined },
    maxAttempts,
    backoff: { baseSeconds: 10, maxSeconds: 60 },
    random: () => 1,
  });
  return { handler, sent, events, counted, log, ledger };
}

describe('callback handler', () => {
  it('2xx: done, audited as delivered with the HTTP status and attempt; the request verifies with the reference library', async () => {
    const { handler, sent, events, counted } = setup([{ kind: 'answered', status: 204 }]);
    expect(await handler(message(1), signal())).toEqual({ status: 'done' });
    expect(sent[0]!.url.href).toBe('https://hooks.acme.example/cb');
    expect(verifyWithReference(secret, { headers: { ...sent[0]!.headers }, body: sent[0]!.body, at: 0 })).toMatchObject({ type: 'submission.held' });
    expect(events).toMatchObject([{ action: 'callback.delivered', outcome: 'success', resourceType: 'submission', resourceId: job.submissionId, details: { httpStatus: 204, attempt: 1, webhookId: job.webhookId } }]);
    expect(counted).toEqual(['delivered']);
  });

  it('500, a redirect, a timeout: retried with backoff under the same webhook id, with a fresh timestamp each time', async () => {
    const { handler, sent, counted } = setup([{ kind: 'answered', status: 500 }, { kind: 'answered', status: 302 }, { kind: 'failed', reason: 'CR_CALLBACK_TIMEOUT' }], 5);
    // The attempt comes from the ledger, not from SQS's receive count.
    expect(await handler(message(1), signal())).toEqual({ status: 'retry', reason: 'CR_CALLBACK_HTTP_500', afterSeconds: 10 });
    expect(await handler(message(4), signal())).toEqual({ status: 'retry', reason: 'CR_CALLBACK_HTTP_302', afterSeconds: 20 });
    expect(await handler(message(9), signal())).toEqual({ status: 'retry', reason: 'CR_CALLBACK_TIMEOUT', afterSeconds: 40 });
    expect(new Set(sent.map((s) => s.headers['webhook-id']))).toEqual(new Set([job.webhookId]));
    for (const s of sent) expect(Math.abs(Number(s.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    expect(counted).toEqual(['retried', 'retried', 'retried']);
  });

  it('a callback already delivered is acknowledged without a request (a duplicate job, a redelivery after a crash), its outcome audited again as a copy', async () => {
    const { handler, sent, counted, ledger, events } = setup([{ kind: 'answered', status: 200 }]);
    expect(await handler(message(1), signal())).toEqual({ status: 'done' });
    expect(await handler(message(1), signal())).toEqual({ status: 'done' });
    expect(await handler(message(2), signal())).toEqual({ status: 'done' });
    expect(sent).toHaveLength(1);
    expect(ledger.finished.get(job.webhookId)).toBe('delivered');
    expect(counted).toEqual(['delivered', 'duplicate', 'duplicate']);
    expect(events.map((e) => [e.action, e.details?.httpStatus, e.details?.attempt, e.details?.copy])).toEqual([
      ['callback.delivered', 200, 1, undefined],
      ['callback.delivered', 200, undefined, true],
      ['callback.delivered', 200, undefined, true],
    ]);
  });

  it('an outcome in the ledger whose audit line was not written (a crash or a failed write between): the copy writes it, marked copy, without a request', async () => {
    for (const [status, action] of [[204, 'callback.delivered'], [410, 'callback.stopped']] as const) {
      const { handler, sent, events } = setup([{ kind: 'answered', status }], 3, 1, 1);
      await expect(handler(message(1), signal())).rejects.toThrow(AuditError);
      expect(events).toEqual([]);
      expect(await handler(message(2), signal())).toEqual({ status: 'done' });
      expect(sent).toHaveLength(1);
      expect(events).toMatchObject([{ action, resourceId: job.submissionId, details: { httpStatus: status, copy: true, webhookId: job.webhookId } }]);
    }
  });

  it('410 Gone: stops at once (done), audited as stopped', async () => {
    const { handler, sent, events, counted } = setup([{ kind: 'answered', status: 410 }]);
    expect(await handler(message(1), signal())).toEqual({ status: 'done' });
    expect(sent).toHaveLength(1);
    expect(events).toMatchObject([{ action: 'callback.stopped', outcome: 'failure', details: { httpStatus: 410, reason: 'CR_CALLBACK_HTTP_410' } }]);
    expect(counted).toEqual(['stopped']);
  });

  it('the attempt that reaches PARTNER_CALLBACK_MAX_ATTEMPTS dead-letters, audited with the last reason', async () => {
    const { handler, events, counted, log } = setup([{ kind: 'answered', status: 503 }], 3, 3);
    expect(await handler(message(1), signal())).toEqual({ status: 'dead-letter', reason: 'CR_CALLBACK_ATTEMPTS_EXHAUSTED' });
    expect(events).toMatchObject([{ action: 'callback.dead-lettered', outcome: 'failure', details: { reason: 'CR_CALLBACK_ATTEMPTS_EXHAUSTED', lastReason: 'CR_CALLBACK_HTTP_503', attempt: 3 } }]);
    expect(counted).toEqual(['dead_lettered']);
    expect(log.entries().find((e) => e.msg === 'partner callback dead-lettered: attempts exhausted')).toMatchObject({ webhookId: job.webhookId, reason: 'CR_CALLBACK_HTTP_503' });
  });

  it('a job whose partner has no callback any more is dropped and audited; a job that is not one is quarantined', async () => {
    const other = buildCallbackJob({ submissionId: '0192f0a4-3333-7aaa-8bbb-0123456789ab', partner: 'gone-partner', status: 'queued', at: '2026-11-30T07:00:00Z' });
    const { handler, sent, events } = setup([]);
    expect(await handler(message(1, JSON.stringify(other)), signal())).toEqual({ status: 'done' });
    expect(events).toMatchObject([{ action: 'callback.dropped', details: { reason: 'CR_CALLBACK_NOT_CONFIGURED', partner: 'gone-partner' } }]);
    expect(await handler(message(1, JSON.stringify({ ...job, note: 'Jane Doe' })), signal())).toEqual({ status: 'quarantine', reason: 'CR_CALLBACK_JOB_INVALID' });
    expect(await handler(message(1, 'not json'), signal())).toEqual({ status: 'quarantine', reason: 'CR_CALLBACK_JOB_INVALID' });
    expect(sent).toHaveLength(0);
  });

  it('retry delays: exponential from the base, capped, with jitter in [d/2, d], never under a second', () => {
    const b = { baseSeconds: 30, maxSeconds: 3600 };
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => callbackRetryDelay(n, b, () => 1))).toEqual([30, 60, 120, 240, 480, 960, 1920, 3600]);
    expect([1, 2, 3].map((n) => callbackRetryDelay(n, b, () => 0))).toEqual([15, 30, 60]);
    expect(callbackRetryDelay(1, { baseSeconds: 1, maxSeconds: 1 }, () => 0)).toBe(1);
  });
});
