import { CHECKPOINT_KIND, parseSignedCheckpoint, verifyCheckpoint, type SignedCheckpoint } from '../audit/checkpoint.ts';
import { AUDIT_ERRORS } from '../audit/errors.ts';
import type { EnvelopeEffect } from '../relay/inbound.ts';
import type { Outbound } from '../relay/outbound.ts';
import type { HandlerResult } from '../transport/consumer.ts';
import { createApplyLedger } from '../state/applyLedger.ts';
import type { LogicalQueue } from '../transport/queues.ts';
import type { Runtime } from './runtime.ts';

/** How long one instance holds a checkpoint envelope while it witnesses it, ms (a file append and an audit line). */
export const WITNESS_LEASE_MS = 30_000;

/**
 * The effect of an `audit.checkpoint` envelope: the peer's signed checkpoint is checked (it
 * must name the sending service and be signed by a pinned peer key), kept in this service's
 * checkpoint file and recorded in its trail as `audit.witnessed`, once per envelope id across
 * the service's instances (items `witness#<envelope id>` in its state table): a redelivered
 * copy is acknowledged as a duplicate. It never reaches the inbox or the EMR. A malformed or
 * unverifiable one is quarantined.
 */
export function witnessEffect<Q extends LogicalQueue>(rt: Runtime<Q>): EnvelopeEffect {
  const ledger = createApplyLedger({ table: rt.state, holder: rt.holder, leaseMs: WITNESS_LEASE_MS, ttlSeconds: rt.stateTtlSeconds, prefix: 'witness' });
  // Copies held by this process at once (one receive can bring both): the ledger lets its own
  // holder claim again, so a later copy waits here for the earlier one, then finds it applied.
  const witnessing = new Map<string, Promise<unknown>>();
  return async (envelope) => {
    const invalid = { status: 'quarantine', reason: AUDIT_ERRORS.CR_AUDIT_CHECKPOINT_INVALID.code } as const;
    if (envelope.bodyEncoding !== 'utf8') return invalid;
    const parsed = parseSignedCheckpoint(envelope.body);
    if ('reason' in parsed) return invalid;
    const { signed } = parsed;
    if (signed.checkpoint.service !== envelope.from) return invalid;
    const verified = await verifyCheckpoint(signed, rt.keys.peers.pinned.map((p) => p.key));
    if (!verified.ok) return invalid;
    for (let prior = witnessing.get(envelope.id); prior; prior = witnessing.get(envelope.id)) await prior.catch(() => undefined);
    const work = witness(envelope.id, signed);
    witnessing.set(envelope.id, work);
    try {
      return await work;
    } finally {
      witnessing.delete(envelope.id);
    }
  };

  async function witness(envelopeId: string, signed: SignedCheckpoint): Promise<HandlerResult> {
    const claim = await ledger.claim(envelopeId);
    if (claim.status === 'applied') return { status: 'duplicate' };
    if (claim.status === 'held-elsewhere') {
      return { status: 'retry', reason: AUDIT_ERRORS.CR_AUDIT_WITNESS_HELD_ELSEWHERE.code, afterSeconds: Math.max(1, Math.ceil(claim.leftMs / 1000)) };
    }
    const { service, seq, headHash, at } = signed.checkpoint;
    try {
      await rt.checkpointStore.append(signed);
      await rt.audit.record({
        action: 'audit.witnessed',
        actor: rt.service,
        resourceType: 'audit-checkpoint',
        resourceId: `${service}:${seq}`,
        outcome: 'success',
        details: { service, seq, headHash, at, envelopeId },
      });
    } catch (err) {
      // Nothing was witnessed for good: the retry may take it at once.
      await ledger.release(envelopeId).catch(() => undefined);
      throw err;
    }
    await ledger.applied(envelopeId);
    rt.logger.info({ peer: service, seq }, 'peer audit checkpoint witnessed');
    return { status: 'done' };
  }
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
