import type { Receipt } from '../../core/receipts/receipt.ts';
import type { RejectedEnvelope } from '../../core/relay/inbound.ts';
import { STATE_ERRORS } from '../../core/state/errors.ts';

/**
 * The `rejected` receipt the app owes the interface for a refused envelope: only a submission,
 * and not a copy retried past the redrive while another instance holds the original (that copy
 * goes to the DLQ, but the submission is still held and will be acknowledged or redelivered).
 */
export function rejectionReceipt(rejected: RejectedEnvelope): Omit<Receipt, 'at'> | undefined {
  if (rejected.kind !== 'care.submission') return undefined;
  if (rejected.disposition === 'dead-lettered' && rejected.reason === STATE_ERRORS.CR_INBOX_HELD_ELSEWHERE.code) return undefined;
  return { ref: rejected.id, status: 'rejected', reasonCode: rejected.reason, disposition: rejected.disposition };
}
