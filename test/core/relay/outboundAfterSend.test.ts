// The outbound path runs `afterSend` (the `queued` status write) while the send's audit lines are
// written: the send resolves once both are done, an audit failure is thrown only once the status
// write has settled (SQS took the message: `queued` is true all the same), and a send SQS refused
// never gets there.
import { describe, expect, it } from 'vitest';
import { AuditError } from '../../../services/core/audit/errors.ts';
import type { AuditSink } from '../../../services/core/audit/types.ts';
import type { RelayCrypto } from '../../../services/core/relay/crypto.ts';
import { createOutbound, type OutboundPayload } from '../../../services/core/relay/outbound.ts';
import { recordingProducer } from '../../helpers/outboundFakes.ts';
import { waitFor } from '../../helpers/wait.ts';

const payload: OutboundPayload = { id: '0190c0de-0000-7000-8000-000000000003', kind: 'care.submission', contentType: 'application/fhir+json', bodyEncoding: 'utf8', body: Buffer.from('{"resourceType":"Patient"}'), partner: 'acme', actor: 'acme' };

const crypto: RelayCrypto = {
  seal: async (envelope) => ({ body: 'armored', attributes: { 'cr-version': '1', 'cr-envelope-id': envelope.id, 'cr-signer': 'AB' } as never }),
  open: () => Promise.reject(new Error('not used')),
  close: async () => {},
};

/** An audit sink whose records stay pending until the test settles them. */
function heldAudit(): AuditSink & { pending: Array<{ resolve: () => void; reject: (err: Error) => void }> } {
  const pending: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  return { pending, record: () => new Promise<void>((resolve, reject) => pending.push({ resolve, reject })) } as never;
}

const settled = async (p: Promise<unknown>): Promise<boolean> => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  return done;
};

describe('outbound: afterSend overlaps the audit write', () => {
  it('starts the status write while the audit line is not on disk yet, and resolves once both are done', async () => {
    const audit = heldAudit();
    const producer = recordingProducer();
    const outbound = createOutbound({ crypto, producer, from: 'interface', to: 'app', queue: 'interface-to-app', audit });
    const after: string[] = [];
    let queued!: () => void;
    const sending = outbound.send(payload, undefined, (id) => (after.push(id), new Promise<void>((resolve) => (queued = resolve))));
    await waitFor(() => audit.pending.length === 1 && after.length === 1);
    expect(after).toEqual([payload.id]);
    audit.pending[0]!.resolve();
    expect(await settled(sending), 'the line is on disk, the status write is not done').toBe(false);
    queued();
    expect(await sending).toBe(payload.id);
  });

  it('an audit failure is thrown once the status write has settled; the status write ran (SQS took the message)', async () => {
    const audit = heldAudit();
    const producer = recordingProducer();
    const outbound = createOutbound({ crypto, producer, from: 'interface', to: 'app', queue: 'interface-to-app', audit });
    let queued!: () => void;
    let wrote = false;
    const sending = outbound.send(payload, undefined, () => new Promise<void>((resolve) => (queued = () => ((wrote = true), resolve()))));
    await waitFor(() => audit.pending.length === 1 && queued !== undefined);
    audit.pending[0]!.reject(new AuditError('CR_AUDIT_WRITE_FAILED', 'disk full'));
    expect(await settled(sending), 'the status write is still in flight').toBe(false);
    queued();
    await expect(sending).rejects.toBeInstanceOf(AuditError);
    expect(wrote).toBe(true);
    expect(producer.sent).toEqual([payload.id]);
  });

  it('a send SQS refused writes no status after it', async () => {
    const producer = { ...recordingProducer(), send: () => Promise.reject(new Error('SQS unavailable')) };
    const outbound = createOutbound({ crypto, producer, from: 'interface', to: 'app', queue: 'interface-to-app' });
    const after: string[] = [];
    await expect(outbound.send(payload, undefined, async (id) => void after.push(id))).rejects.toThrow('SQS unavailable');
    expect(after).toEqual([]);
  });
});
