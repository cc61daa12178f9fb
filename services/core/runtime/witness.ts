import { CHECKPOINT_KIND, parseSignedCheckpoint, verifyCheckpoint } from '../audit/checkpoint.ts';
import { AUDIT_ERRORS } from '../audit/errors.ts';
import type { EnvelopeEffect } from '../relay/inbound.ts';
import type { Outbound } from '../relay/outbound.ts';
import type { LogicalQueue } from '../transport/queues.ts';
import type { Runtime } from './runtime.ts';

/**
 * The effect of an `audit.checkpoint` envelope: the peer's signed checkpoint is checked (it
 * must name the sending service and be signed by a pinned peer key), kept in this service's
 * checkpoint file and recorded in its trail as `audit.witnessed`. It never reaches the inbox
 * or the EMR. A malformed or unverifiable one is quarantined.
 */
export function witnessEffect<Q extends LogicalQueue>(rt: Runtime<Q>): EnvelopeEffect {
  return async (envelope) => {
    const invalid = { status: 'quarantine', reason: AUDIT_ERRORS.CR_AUDIT_CHECKPOINT_INVALID.code } as const;
    if (envelope.bodyEncoding !== 'utf8') return invalid;
    const parsed = parseSignedCheckpoint(envelope.body);
    if ('reason' in parsed) return invalid;
    const { signed } = parsed;
    if (signed.checkpoint.service !== envelope.from) return invalid;
    const verified = await verifyCheckpoint(signed, rt.keys.peers.pinned.map((p) => p.key));
    if (!verified.ok) return invalid;
    await rt.checkpointStore.append(signed);
    const { service, seq, headHash, at } = signed.checkpoint;
    await rt.audit.record({
      action: 'audit.witnessed',
      actor: rt.service,
      resourceType: 'audit-checkpoint',
      resourceId: `${service}:${seq}`,
      outcome: 'success',
      details: { service, seq, headHash, at, envelopeId: envelope.id },
    });
    rt.logger.info({ peer: service, seq }, 'peer audit checkpoint witnessed');
    return { status: 'done' };
  };
}

/**
 * Starts the runtime's periodic checkpoints, each also sent to the peer on `outbound` as an
 * `audit.checkpoint` envelope. Not while emergency mode is on: nothing new goes on the relay
 * then (the checkpoint is still signed, stored and shipped); the first one after it goes out.
 */
export function startWitnessing<Q extends LogicalQueue>(rt: Runtime<Q>, outbound: Outbound): void {
  rt.checkpoints.start(async (signed) => {
    if (rt.emergency.active) return;
    await outbound.send({
      kind: CHECKPOINT_KIND,
      contentType: 'application/json',
      bodyEncoding: 'utf8',
      body: Buffer.from(JSON.stringify(signed), 'utf8'),
      actor: rt.service,
    });
  });
}
