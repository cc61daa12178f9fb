// The inbox effect claims the envelope id while `message.received` is being written (the two
// round trips overlap, issue 17's tail latency), yet a record is shown only once its line is
// durable, and a claim taken for a write that failed is given back (no lease left behind).
import { describe, expect, it } from 'vitest';
import { inboxEffect } from '../../../services/app/inbox/effect.ts';
import { Inbox } from '../../../services/app/inbox/inbox.ts';
import type { AuditEvent, AuditSink } from '../../../services/core/audit/types.ts';
import { buildEnvelope } from '../../../services/core/envelope/envelope.ts';
import { silentLogger } from '../../../services/core/log/logger.ts';
import type { RelayCrypto } from '../../../services/core/relay/crypto.ts';
import { createInboundHandler } from '../../../services/core/relay/inbound.ts';
import type { ApplyLedger } from '../../../services/core/state/applyLedger.ts';
import type { ReceivedMessage } from '../../../services/core/transport/consumerTypes.ts';
import { waitFor } from '../../helpers/wait.ts';

const envelope = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', partner: 'acme', contentType: 'application/fhir+json', body: '{"resourceType":"Patient"}' });
const crypto: RelayCrypto = { seal: () => Promise.reject(new Error('not used')), open: async () => envelope, close: async () => {} };
const message: ReceivedMessage = {
  messageId: 'm-1',
  body: 'sealed',
  attributes: { 'cr-version': { DataType: 'String', StringValue: '1' }, 'cr-envelope-id': { DataType: 'String', StringValue: envelope.id } },
  envelopeId: envelope.id,
  receiveCount: 1,
  sentAt: undefined,
  queue: 'interface-to-app',
};

/** An audit sink whose writes stay pending until the test settles them. */
function heldAudit(): AuditSink & { pending: Array<{ event: AuditEvent; resolve: () => void; reject: (err: Error) => void }> } {
  const pending: Array<{ event: AuditEvent; resolve: () => void; reject: (err: Error) => void }> = [];
  return { pending, record: (event) => new Promise<void>((resolve, reject) => pending.push({ event, resolve, reject })) };
}

/** An apply ledger that records its calls; every claim succeeds. */
function recordingLedger(): ApplyLedger & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    claim: async (id) => (calls.push(`claim ${id}`), { status: 'claimed' }),
    applied: async (id) => void calls.push(`applied ${id}`),
    release: async (id) => void calls.push(`release ${id}`),
    isApplied: async (id) => calls.includes(`applied ${id}`),
  };
}

function handlerWith(audit: AuditSink, ledger: ApplyLedger, inbox: Inbox) {
  return createInboundHandler({
    crypto,
    queue: 'interface-to-app',
    service: 'app',
    audit,
    effects: { 'care.submission': inboxEffect(inbox, { ledger, logger: silentLogger }) },
  });
}

describe('inbox effect: the claim overlaps the message.received audit write', () => {
  it('claims while the line is being written, and shows the record only once the line is durable', async () => {
    const audit = heldAudit();
    const ledger = recordingLedger();
    const inbox = new Inbox(10);
    const result = handlerWith(audit, ledger, inbox)(message, new AbortController().signal);
    await waitFor(() => ledger.calls.length === 1 && audit.pending.length === 1);
    expect(ledger.calls).toEqual([`claim ${envelope.id}`]);
    expect(audit.pending[0]!.event).toMatchObject({ action: 'message.received', resourceId: envelope.id });
    // Claimed, but the line is not durable yet: nothing is shown.
    await new Promise((r) => setImmediate(r));
    expect(inbox.size).toBe(0);
    audit.pending[0]!.resolve();
    await waitFor(() => inbox.size === 1);
    inbox.ack(envelope.id);
    expect(await result).toMatchObject({ status: 'done' });
    expect(ledger.calls).toEqual([`claim ${envelope.id}`, `applied ${envelope.id}`]);
  });

  it('a failed audit write gives the claim back, shows nothing, and fails the handler (the consumer retries)', async () => {
    const audit = heldAudit();
    const ledger = recordingLedger();
    const inbox = new Inbox(10);
    const result = handlerWith(audit, ledger, inbox)(message, new AbortController().signal);
    await waitFor(() => ledger.calls.length === 1 && audit.pending.length === 1);
    audit.pending[0]!.reject(Object.assign(new Error('disk full'), { name: 'AuditError' }));
    await expect(result).rejects.toThrow('disk full');
    expect(inbox.size).toBe(0);
    expect(ledger.calls).toEqual([`claim ${envelope.id}`, `release ${envelope.id}`]);
  });

  it('an envelope already applied elsewhere is a duplicate once its line is written, and is never shown', async () => {
    const audit = heldAudit();
    const inbox = new Inbox(10);
    const ledger: ApplyLedger = { ...recordingLedger(), claim: async () => ({ status: 'applied' }) };
    const result = handlerWith(audit, ledger, inbox)(message, new AbortController().signal);
    await waitFor(() => audit.pending.length === 1);
    audit.pending[0]!.resolve();
    expect(await result).toEqual({ status: 'duplicate' });
    expect(inbox.size).toBe(0);
  });
});
