import type { Logger } from 'pino';
import type { AuditSink } from '../../core/audit/types.ts';
import type { Envelope } from '../../core/envelope/envelope.ts';
import { RECEIPT_ERRORS } from '../../core/receipts/errors.ts';
import type { ReceiptSender } from '../../core/receipts/receipts.ts';
import type { EnvelopeEffect } from '../../core/relay/inbound.ts';
import type { DeliveryLedger } from '../../core/state/deliveryLedger.ts';
import { STATE_ERRORS } from '../../core/state/errors.ts';
import type { HandlerResult } from '../../core/transport/consumerTypes.ts';
import type { EmrClient } from './emrClient.ts';

/** Options for {@link emrDeliveryEffect}. */
export interface EmrDeliveryOptions {
  /** The EMR client. */
  emr: EmrClient;
  /** Audit trail (`message.delivered`, `message.dead-lettered`). */
  audit: AuditSink;
  /** Service logger. */
  logger: Logger;
  /** Deliveries by envelope id, shared by every instance: once in effect, attempts counted. */
  ledger: DeliveryLedger;
  /** Tells the app each chart update's end: `delivered` (EMR status or ACK code) or `failed` (dead-lettered, reason). */
  receipts?: Pick<ReceiptSender, 'send'>;
}

/**
 * The effect of a chart update on the interface service: deliver it to the EMR, once in
 * effect across restarts and instances (the ledger; the `Idempotency-Key` header covers
 * the window between the EMR's answer and the ledger write). The SQS message is deleted
 * only after a 2xx; transient failures retry with backoff (the redrive policy moves it to
 * the DLQ after maxReceiveCount); a permanent refusal goes to the DLQ at once with the
 * status as the reason. `attempt` counts delivery attempts, not SQS receives.
 */
export function emrDeliveryEffect(options: EmrDeliveryOptions): EnvelopeEffect {
  const { ledger } = options;
  const receiptNotSent = { status: 'retry', reason: RECEIPT_ERRORS.CR_RECEIPT_NOT_SENT.code } as const;
  const deliveredReceipt = async (ref: string, emrStatus: number | undefined, ackCode: string | undefined): Promise<boolean> =>
    (await options.receipts?.send({ ref, status: 'delivered', ...(emrStatus === undefined ? {} : { emrStatus }), ...(ackCode ? { ackCode } : {}) })) ?? true;
  return (envelope, _message, signal) => deliver(envelope, signal);

  async function deliver(envelope: Envelope, signal: AbortSignal): Promise<HandlerResult> {
    const start = await ledger.begin(envelope.id);
    const base = { actor: 'interface', resourceType: 'envelope', resourceId: envelope.id } as const;
    // Delivered before (by this or another instance, maybe one killed before its receipt went
    // out): the receipt is sent again, never the chart update; the app applies it once. The ledger
    // is written before the `message.delivered` line, and a crash (or a failed audit write) in
    // between leaves a delivery without one: the copy writes it again, marked `copy`.
    if (start.status === 'delivered') {
      await options.audit.record({ ...base, action: 'message.delivered', outcome: 'success', details: { ...emrAnswer(start.httpStatus, start.ackCode), copy: true } });
      return (await deliveredReceipt(envelope.id, start.httpStatus, start.ackCode)) ? { status: 'duplicate' } : receiptNotSent;
    }
    if (start.status === 'busy') return { status: 'retry', reason: STATE_ERRORS.CR_DELIVERY_IN_PROGRESS.code, afterSeconds: start.retryAfterSeconds };
    const attempt = start.attempt;
    // The lease is renewed while the attempt runs (a streamed update can outlast any fixed lease),
    // so a copy received meanwhile, here or on another instance, waits instead of posting again.
    const lease = ledger.keep(envelope.id, attempt);
    let outcome;
    try {
      outcome = await options.emr.deliver(envelope, AbortSignal.any([signal, lease.lost]));
    } catch (err) {
      await lease.stop();
      if (!lease.lost.aborted) await ledger.abandon(envelope.id, attempt);
      throw err;
    }
    await lease.stop();
    // Taken over (this instance could not renew within the lease): the other attempt writes the
    // outcome; this one was cut off and writes nothing. A delivery that got its 2xx is still recorded.
    if (lease.lost.aborted && outcome.kind !== 'delivered') {
      options.logger.warn({ envelopeId: envelope.id, attempt }, 'EMR delivery stopped: another attempt took its lease over');
      return { status: 'retry', reason: STATE_ERRORS.CR_DELIVERY_LEASE_LOST.code };
    }
    switch (outcome.kind) {
      case 'delivered': {
        await ledger.delivered(envelope.id, outcome.status, outcome.ackCode);
        const answer = emrAnswer(outcome.status, outcome.ackCode);
        options.logger.info({ envelopeId: envelope.id, ...answer, attempt }, 'delivered to EMR');
        await options.audit.record({ ...base, action: 'message.delivered', outcome: 'success', details: { ...answer, attempt } });
        // The message stays until the app has been told: a retry finds the delivery in the ledger.
        return (await deliveredReceipt(envelope.id, outcome.status, outcome.ackCode)) ? { status: 'done' } : receiptNotSent;
      }
      case 'transient':
        if (outcome.deadLetterOnAttempt !== undefined && attempt >= outcome.deadLetterOnAttempt) {
          await ledger.failed(envelope.id, outcome.reason);
          options.logger.warn({ envelopeId: envelope.id, reason: outcome.reason, attempt }, 'EMR delivery failed on the last attempt');
          await options.audit.record({ ...base, action: 'message.dead-lettered', outcome: 'failure', details: { reason: outcome.reason, attempt } });
          await options.receipts?.send(failedReceipt(envelope.id, outcome.reason, outcome.ackCode));
          return { status: 'dead-letter', reason: outcome.reason };
        }
        await ledger.abandon(envelope.id, attempt);
        options.logger.warn({ envelopeId: envelope.id, reason: outcome.reason, attempt }, 'EMR delivery failed; will retry');
        return { status: 'retry', reason: outcome.reason, ...(outcome.retryAfterSeconds === undefined ? {} : { afterSeconds: outcome.retryAfterSeconds }) };
      case 'rejected':
        await ledger.failed(envelope.id, outcome.reason);
        options.logger.warn({ envelopeId: envelope.id, reason: outcome.reason, attempt }, 'EMR rejected the delivery');
        await options.audit.record({ ...base, action: 'message.dead-lettered', outcome: 'failure', details: { reason: outcome.reason, attempt } });
        await options.receipts?.send(failedReceipt(envelope.id, outcome.reason, outcome.ackCode));
        return { status: 'dead-letter', reason: outcome.reason };
    }
  }
}

/** The EMR's answer to a delivery, as audited: its HTTP status or HL7 ACK code, whichever it gave. */
function emrAnswer(status: number | undefined, ackCode: string | undefined): { status?: number; ackCode?: string } {
  return { ...(status === undefined ? {} : { status }), ...(ackCode ? { ackCode } : {}) };
}

/** The `failed` receipt of a dead-lettered chart update. */
function failedReceipt(ref: string, reason: string, ackCode: string | undefined): Parameters<ReceiptSender['send']>[0] {
  return { ref, status: 'failed', reasonCode: reason, disposition: 'dead-lettered', ...(ackCode ? { ackCode } : {}) };
}
