import { describe, expect, it } from 'vitest';
import { memoryAudit } from '../../../services/core/audit/auditLog.ts';
import { buildEnvelope } from '../../../services/core/envelope/envelope.ts';
import type { RelayCrypto } from '../../../services/core/relay/crypto.ts';
import { createInboundHandler } from '../../../services/core/relay/inbound.ts';
import type { ReceivedMessage } from '../../../services/core/transport/consumerTypes.ts';

const envelope = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', contentType: 'application/fhir+json', body: '{"resourceType":"Patient"}' });
const other = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', contentType: 'application/fhir+json', body: '{"resourceType":"Observation"}' });
const byBody = new Map([['sealed-1', envelope], ['sealed-2', other]]);

/** Opens the two known bodies; anything else would be a test bug. */
const crypto: RelayCrypto = {
  seal: () => Promise.reject(new Error('not used')),
  open: async (armored) => byBody.get(armored)!,
  close: async () => {},
};

function received(body: string, id: string, receiveCount: number): ReceivedMessage {
  return {
    messageId: `m-${receiveCount}`,
    body,
    attributes: { 'cr-version': { DataType: 'String', StringValue: '1' }, 'cr-envelope-id': { DataType: 'String', StringValue: id } },
    envelopeId: id,
    receiveCount,
    sentAt: undefined,
    queue: 'interface-to-app',
  };
}

describe('inbound handler audit', () => {
  it('audits message.received on the first successful open even when SQS counts a receive by an abandoned poll, and once per envelope', async () => {
    const audit = memoryAudit();
    let applied = 0;
    const handler = createInboundHandler({
      crypto, queue: 'interface-to-app', service: 'app', audit,
      effects: {
        'care.submission': async () => {
          applied++;
          return { status: 'retry', reason: 'test', afterSeconds: 1 };
        },
      },
    });
    const signal = new AbortController().signal;
    // The first receive went to a poll that was abandoned: this process first sees it at count 2.
    await handler(received('sealed-1', envelope.id, 2), signal);
    await handler(received('sealed-1', envelope.id, 3), signal);
    await handler(received('sealed-2', other.id, 1), signal);
    await handler(received('sealed-2', other.id, 2), signal);
    expect(applied).toBe(4);
    const lines = audit.events.filter((e) => e.action === 'message.received');
    expect(lines.map((e) => e.resourceId)).toEqual([envelope.id, other.id]);
    expect(lines[0]).toMatchObject({ actor: 'app', resourceType: 'envelope', outcome: 'success', details: { queue: 'interface-to-app', kind: 'care.submission' } });
  });
});

describe('inbound handler on the last receive before the redrive', () => {
  it('a submission that kept failing was never reported dead-lettered: told once, on the maxReceiveCount receive, with the reason code', async () => {
    const rejected: Array<{ id: string; kind: string; reason: string; disposition: string }> = [];
    const handler = createInboundHandler({
      crypto, queue: 'interface-to-app', service: 'app', maxReceiveCount: 3,
      onRejected: (r) => rejected.push(r),
      effects: { 'care.submission': async () => ({ status: 'retry', reason: 'CR_INBOX_HELD_ELSEWHERE', afterSeconds: 1 }) },
    });
    const signal = new AbortController().signal;
    await handler(received('sealed-1', envelope.id, 1), signal);
    await handler(received('sealed-1', envelope.id, 2), signal);
    expect(rejected).toEqual([]);
    expect(await handler(received('sealed-1', envelope.id, 3), signal)).toMatchObject({ status: 'retry' });
    // A receive past the count (an approximate count, a redrive that lagged) tells nothing again.
    await handler(received('sealed-1', envelope.id, 4), signal);
    expect(rejected).toEqual([{ id: envelope.id, kind: 'care.submission', reason: 'CR_INBOX_HELD_ELSEWHERE', disposition: 'dead-lettered' }]);
  });

  it('a throw on the last receive is rethrown (the consumer retries it) and told with its CR code, or CR_ENVELOPE_EFFECT_FAILED for a code-less error', async () => {
    const rejected: Array<{ id: string; reason: string; disposition: string }> = [];
    const handler = createInboundHandler({
      crypto, queue: 'interface-to-app', service: 'app', maxReceiveCount: 2,
      onRejected: (r) => rejected.push(r),
      effects: {
        'care.submission': async (e) => {
          throw e.id === envelope.id ? Object.assign(new Error('x'), { name: 'ProvisionedThroughputExceededException' }) : Object.assign(new Error('y'), { code: 'CR_STATE_TABLE_MISSING' });
        },
      },
    });
    const signal = new AbortController().signal;
    await expect(handler(received('sealed-1', envelope.id, 1), signal)).rejects.toThrow();
    expect(rejected).toEqual([]);
    await expect(handler(received('sealed-1', envelope.id, 2), signal)).rejects.toThrow();
    await expect(handler(received('sealed-2', other.id, 5), signal)).rejects.toThrow();
    expect(rejected).toEqual([
      { id: envelope.id, kind: 'care.submission', reason: 'CR_ENVELOPE_EFFECT_FAILED', disposition: 'dead-lettered' },
      { id: other.id, kind: 'care.submission', reason: 'CR_STATE_TABLE_MISSING', disposition: 'dead-lettered' },
    ]);
  });

  it('without a known maxReceiveCount nothing is told, however often it failed', async () => {
    const rejected: unknown[] = [];
    const handler = createInboundHandler({
      crypto, queue: 'interface-to-app', service: 'app', onRejected: (r) => rejected.push(r),
      effects: { 'care.submission': async () => ({ status: 'retry', reason: 'CR_INBOX_HELD_ELSEWHERE' }) },
    });
    await handler(received('sealed-1', envelope.id, 1000), new AbortController().signal);
    expect(rejected).toEqual([]);
  });
});
