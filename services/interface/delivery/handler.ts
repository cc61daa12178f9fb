import type { Logger } from 'pino';
import type { AuditSink } from '../../core/audit/types.ts';
import type { EnvelopeEffect } from '../../core/relay/inbound.ts';
import type { EmrClient } from './emrClient.ts';

/** Options for {@link emrDeliveryEffect}. */
export interface EmrDeliveryOptions {
  /** The EMR client. */
  emr: EmrClient;
  /** Audit trail (`message.delivered`, `message.dead-lettered`). */
  audit: AuditSink;
  /** Service logger. */
  logger: Logger;
}

/**
 * The effect of a chart update on the interface service: deliver it to the EMR. The
 * SQS message is deleted only after a 2xx; transient failures retry with backoff (the
 * redrive policy moves it to the DLQ after maxReceiveCount); a permanent refusal goes
 * to the DLQ at once with the status as the reason.
 */
export function emrDeliveryEffect(options: EmrDeliveryOptions): EnvelopeEffect {
  return async (envelope, message, signal) => {
    const outcome = await options.emr.deliver(envelope, signal);
    const base = { actor: 'interface', resourceType: 'envelope', resourceId: envelope.id } as const;
    switch (outcome.kind) {
      case 'delivered': {
        const answer = { ...(outcome.status === undefined ? {} : { status: outcome.status }), ...(outcome.ackCode ? { ackCode: outcome.ackCode } : {}) };
        options.logger.info({ envelopeId: envelope.id, ...answer, attempt: message.receiveCount }, 'delivered to EMR');
        await options.audit.record({ ...base, action: 'message.delivered', outcome: 'success', details: { ...answer, attempt: message.receiveCount } });
        return { status: 'done' };
      }
      case 'transient':
        if (outcome.deadLetterOnAttempt !== undefined && message.receiveCount >= outcome.deadLetterOnAttempt) {
          options.logger.warn({ envelopeId: envelope.id, reason: outcome.reason, attempt: message.receiveCount }, 'EMR delivery failed on the last attempt');
          await options.audit.record({ ...base, action: 'message.dead-lettered', outcome: 'failure', details: { reason: outcome.reason, attempt: message.receiveCount } });
          return { status: 'dead-letter', reason: outcome.reason };
        }
        options.logger.warn({ envelopeId: envelope.id, reason: outcome.reason, attempt: message.receiveCount }, 'EMR delivery failed; will retry');
        return { status: 'retry', reason: outcome.reason, ...(outcome.retryAfterSeconds === undefined ? {} : { afterSeconds: outcome.retryAfterSeconds }) };
      case 'rejected':
        options.logger.warn({ envelopeId: envelope.id, reason: outcome.reason }, 'EMR rejected the delivery');
        await options.audit.record({ ...base, action: 'message.dead-lettered', outcome: 'failure', details: { reason: outcome.reason } });
        return { status: 'dead-letter', reason: outcome.reason };
    }
  };
}
