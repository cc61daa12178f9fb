import { z } from 'zod';
import type { Envelope } from '../envelope/envelope.ts';
import { UUIDV7_PATTERN } from '../envelope/uuidv7.ts';

/** The envelope kind of a delivery receipt. */
export const RECEIPT_KIND = 'delivery.receipt';

/** The media type of a receipt's body (JSON, ids and codes only). */
export const RECEIPT_CONTENT_TYPE = 'application/vnd.care-relay.receipt+json';

/** What a receipt says about the envelope it names: app → interface `held`, `acknowledged`, `rejected`; interface → app `delivered`, `failed`. */
export type ReceiptStatus = 'held' | 'acknowledged' | 'rejected' | 'delivered' | 'failed';

/** Where a refused envelope went (`rejected` and `failed`). */
export type ReceiptDisposition = 'quarantined' | 'dead-lettered';

/** The body of a `delivery.receipt` envelope: never PHI, only ids, codes and times. */
export interface Receipt {
  /** The envelope id this receipt is about. */
  ref: string;
  /** What happened to it. */
  status: ReceiptStatus;
  /** When it happened (RFC 3339 UTC), as the sender saw it. */
  at: string;
  /** `rejected`/`failed`: the `CR_*` reason code. */
  reasonCode?: string;
  /** `rejected`/`failed`: quarantined or dead-lettered. */
  disposition?: ReceiptDisposition;
  /** `delivered` over HTTP: the EMR's status. */
  emrStatus?: number;
  /** `delivered`/`failed` over MLLP: the EMR's HL7 ACK code (MSA-1). */
  ackCode?: string;
}

const CODE = /^CR_[A-Z0-9_]{1,80}$/;

const receiptSchema = z
  .strictObject({
    ref: z.string().regex(UUIDV7_PATTERN),
    status: z.enum(['held', 'acknowledged', 'rejected', 'delivered', 'failed']),
    at: z.iso.datetime({ offset: false }),
    reasonCode: z.string().regex(CODE).optional(),
    disposition: z.enum(['quarantined', 'dead-lettered']).optional(),
    emrStatus: z.number().int().min(100).max(599).optional(),
    ackCode: z.string().regex(/^[A-Z]{2}$/).optional(),
  })
  .refine((r) => (r.status === 'rejected' || r.status === 'failed') === (r.reasonCode !== undefined), { message: 'reasonCode goes with rejected and failed, and only with them' });

/** The statuses each sender may report: a receipt from the wrong side is refused. */
export const RECEIPT_STATUSES_FROM: Readonly<Record<string, readonly ReceiptStatus[]>> = {
  app: ['held', 'acknowledged', 'rejected'],
  interface: ['delivered', 'failed'],
};

/** The JSON body of a receipt (field order fixed). */
export function encodeReceipt(receipt: Receipt): string {
  const { ref, status, at, reasonCode, disposition, emrStatus, ackCode } = receipt;
  return JSON.stringify({ ref, status, at, reasonCode, disposition, emrStatus, ackCode });
}

/**
 * Reads the receipt an opened `delivery.receipt` envelope carries, or undefined when its body is
 * not a valid receipt, or names a status its sender may not report (checked: the quarantine reason is the caller's).
 */
export function parseReceipt(envelope: Envelope): Receipt | undefined {
  if (envelope.kind !== RECEIPT_KIND || envelope.bodyEncoding !== 'utf8' || envelope.contentType !== RECEIPT_CONTENT_TYPE) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(envelope.body);
  } catch {
    return undefined;
  }
  const parsed = receiptSchema.safeParse(value);
  if (!parsed.success) return undefined;
  if (!(RECEIPT_STATUSES_FROM[envelope.from] ?? []).includes(parsed.data.status)) return undefined;
  return parsed.data as Receipt;
}
