import { defineErrors, type ErrorCode } from '../errors/defineErrors.ts';
import { fromCatalogue, RelayError } from '../errors/relayError.ts';

/** Codes of delivery receipts and the status routes (docs/errors.md, "Receipts and status"). */
export const RECEIPT_ERRORS = defineErrors({
  CR_RECEIPT_INVALID: { title: 'Receipt invalid', description: 'Quarantine reason: a `delivery.receipt` envelope whose body is not a valid receipt, or names a status its sender may not report.' },
  CR_RECEIPT_NOT_SENT: { title: 'Receipt not sent', description: 'Retry reason (interface): a chart update reached the EMR but its `delivered` receipt could not be sent; the message is kept and retried, and the retry (the ledger says delivered) sends the receipt again instead of delivering again.' },
  CR_RECEIPT_UNKNOWN_REF: { title: 'Receipt for an unknown envelope', description: 'Audit reason (`receipt.unknown`): a valid receipt names an envelope id this service has no status for (never sent from here, or expired); it is acknowledged, not retried.' },
  CR_STATUS_NOT_FOUND: { status: 404, title: 'Not Found', description: "No status for this id that the caller may read: unknown, expired, or another partner's (the same answer for each)." },
} as const);

/** One of the {@link RECEIPT_ERRORS} codes. */
export type ReceiptErrorCode = ErrorCode<typeof RECEIPT_ERRORS>;

/** An error of the status routes: one of {@link RECEIPT_ERRORS}. */
export class StatusError extends RelayError {
  /** The stable code (narrows in a `switch`). */
  override readonly code: ReceiptErrorCode;

  constructor(code: ReceiptErrorCode, message: string) {
    super(code, message, fromCatalogue(RECEIPT_ERRORS[code], {}));
    this.name = 'StatusError';
    this.code = code;
  }
}
