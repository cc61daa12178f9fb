import { z } from 'zod';
import type { Envelope } from '../envelope/envelope.ts';
import { UUIDV7_PATTERN } from '../envelope/uuidv7.ts';

/** The envelope kind of a delivery receipt. */
export const RECEIPT_KIND = 'delivery.receipt';

/** The media type of a receipt's body (JSON, ids and codes only). */
export const RECEIPT_CONTENT_TYPE = 'application/vnd.care-relay.receipt+json';

/** The media type of a body that carries several receipts: `{"receipts":[receipt, ...]}`. */
export const RECEIPTS_CONTENT_TYPE = 'application/vnd.care-relay.receipts+json';

/** The most receipts one envelope carries. */
export const MAX_RECEIPTS_PER_ENVELOPE = 100;

/**
 * How long a best-effort receipt (`held`) waits for the receipt that follows it about the same
 * envelope (`acknowledged`), ms: the app's ack comes after a state-table write, tens of ms later
 * (`RECEIPT_LINGER_MS`).
 */
export const DEFAULT_RECEIPT_LINGER_MS = 100;

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

const receiptsSchema = z.strictObject({ receipts: z.array(receiptSchema).min(2).max(MAX_RECEIPTS_PER_ENVELOPE) });

/** The JSON of a receipt (field order fixed). */
export function encodeReceipt(receipt: Receipt): string {
  const { ref, status, at, reasonCode, disposition, emrStatus, ackCode } = receipt;
  return JSON.stringify({ ref, status, at, reasonCode, disposition, emrStatus, ackCode });
}

/** The JSON body of an envelope carrying 2 to {@link MAX_RECEIPTS_PER_ENVELOPE} receipts. */
export function encodeReceipts(receipts: readonly Receipt[]): string {
  if (receipts.length < 2 || receipts.length > MAX_RECEIPTS_PER_ENVELOPE) throw new RangeError(`an envelope carries 2 to ${MAX_RECEIPTS_PER_ENVELOPE} receipts (${receipts.length} given)`);
  return `{"receipts":[${receipts.map(encodeReceipt).join(',')}]}`;
}

/** One receipt an envelope carries, with the id it is known by: the envelope's own id, or `<envelope id>.<index>` when it carries several. */
export interface CarriedReceipt {
  /** The receipt's id (a second copy of the envelope gives the same ids). */
  id: string;
  /** The receipt. */
  receipt: Receipt;
}

const parseJson = (body: string): unknown => {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
};

/**
 * Reads the receipts an opened `delivery.receipt` envelope carries (one, or 2 to 100 in order),
 * or undefined when its body is not valid, or one of them names a status its sender may not
 * report (checked: the quarantine reason is the caller's). All or none: one bad receipt refuses
 * the envelope.
 */
export function parseReceipts(envelope: Envelope): CarriedReceipt[] | undefined {
  if (envelope.kind !== RECEIPT_KIND || envelope.bodyEncoding !== 'utf8') return undefined;
  let receipts: Receipt[];
  if (envelope.contentType === RECEIPT_CONTENT_TYPE) {
    const parsed = receiptSchema.safeParse(parseJson(envelope.body));
    if (!parsed.success) return undefined;
    receipts = [parsed.data as Receipt];
  } else if (envelope.contentType === RECEIPTS_CONTENT_TYPE) {
    const parsed = receiptsSchema.safeParse(parseJson(envelope.body));
    if (!parsed.success) return undefined;
    receipts = parsed.data.receipts as Receipt[];
  } else return undefined;
  const allowed = RECEIPT_STATUSES_FROM[envelope.from] ?? [];
  if (!receipts.every((r) => allowed.includes(r.status))) return undefined;
  return receipts.length === 1 ? [{ id: envelope.id, receipt: receipts[0]! }] : receipts.map((receipt, i) => ({ id: `${envelope.id}.${i}`, receipt }));
}
