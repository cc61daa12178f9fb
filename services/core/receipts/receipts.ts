import type { Logger } from 'pino';
import type { AuditSink } from '../audit/types.ts';
import type { EnvelopeEffect } from '../relay/inbound.ts';
import type { Outbound } from '../relay/outbound.ts';
import { ttlAfter, type StateTable } from '../state/table.ts';
import type { StatusResult } from '../state/statusStore.ts';
import { RECEIPT_ERRORS } from './errors.ts';
import { encodeReceipt, parseReceipt, RECEIPT_CONTENT_TYPE, RECEIPT_KIND, type Receipt } from './receipt.ts';

/** Sends receipts to the peer; never throws (a lost receipt leaves a status behind, never a message). */
export interface ReceiptSender {
  /** Seals and sends one receipt (`at` defaults to now): true once SQS took it; a failure is logged with ids and codes only. */
  send(receipt: Omit<Receipt, 'at'> & { at?: string }): Promise<boolean>;
}

/** Creates the receipt sender of a service on its outbound path. */
export function createReceiptSender(options: { outbound: Outbound; service: string; logger: Logger }): ReceiptSender {
  return {
    async send(receipt) {
      const full: Receipt = { ...receipt, at: receipt.at ?? new Date().toISOString() };
      try {
        await options.outbound.send({
          kind: RECEIPT_KIND,
          contentType: RECEIPT_CONTENT_TYPE,
          bodyEncoding: 'utf8',
          body: Buffer.from(encodeReceipt(full), 'utf8'),
          actor: options.service,
          // On an ordered FIFO queue receipts need no order among envelopes (a status only moves forward):
          // a group per envelope they name, so they flow side by side instead of one at a time.
          orderingKey: `receipt-${full.ref}`,
        });
        return true;
      } catch (err) {
        const code = (err as { code?: string; name?: string }).code ?? (err as { name?: string }).name;
        options.logger.warn({ envelopeId: full.ref, status: full.status, code }, 'receipt could not be sent');
        return false;
      }
    },
  };
}

/**
 * Applies a receipt to this service's status of the envelope it names; `receiptId` (the receipt's
 * own envelope id) is kept with the step it writes, so its second copy answers `sameReport`.
 */
export type ApplyReceipt = (receipt: Receipt, from: string, receiptId: string) => Promise<StatusResult>;

/** Options for {@link receiptEffect}. */
export interface ReceiptEffectOptions {
  /** This service's state table: receipt ids already applied. */
  table: StateTable;
  /** How long an applied receipt id is remembered, seconds (the queue retention). */
  ttlSeconds: number;
  /** Moves the status the receipt is about. */
  apply: ApplyReceipt;
  /** `receipt.applied`, `receipt.unknown`. */
  audit: AuditSink;
  /** This service's name (the audit actor). */
  service: string;
  /** Service logger. */
  logger: Logger;
}

/**
 * The effect of a `delivery.receipt` envelope: an invalid one is quarantined; a valid one
 * moves the status it names (forward only), is audited `receipt.applied`, and its own id is
 * remembered, so a second copy is acknowledged as a duplicate (audited `message.duplicate`).
 * A receipt that wrote its step (`moved`, `filled`) is remembered by that step (its id is kept
 * there in the same write: one call); one that wrote nothing (the step was known, or the id is
 * unknown) by a `receipt#<id>` item, as before.
 * A receipt naming an id this service has no status for is audited `receipt.unknown` and
 * acknowledged: never retried. A receipt never causes a receipt.
 */
export function receiptEffect(options: ReceiptEffectOptions): EnvelopeEffect {
  return async (envelope) => {
    const receipt = parseReceipt(envelope);
    if (!receipt) return { status: 'quarantine', reason: RECEIPT_ERRORS.CR_RECEIPT_INVALID.code };
    // A step is written once (a status only moves forward), so a step this receipt wrote marks it
    // applied in the same write; a copy finds its own id there (`sameReport`).
    const { change, sameReport } = await options.apply(receipt, envelope.from, envelope.id);
    if (sameReport) return { status: 'duplicate' };
    if (change === 'unchanged' || change === 'unknown') {
      // Nothing written: remember the receipt by an item of its own. It also finds the copies of
      // receipts applied before their id was kept with the step. Applying again after a crash
      // before this mark is harmless (the status change is idempotent).
      const t = Date.now();
      const first = await options.table.put(
        { pk: `receipt#${envelope.id}`, ref: receipt.ref, ttl: ttlAfter(options.ttlSeconds, t) },
        { condition: 'attribute_not_exists(pk) OR #ttl < :nowSec', names: { '#ttl': 'ttl' }, values: { ':nowSec': Math.floor(t / 1000) } },
      );
      if (!first) return { status: 'duplicate' };
    }
    const details = { receiptId: envelope.id, status: receipt.status, ...(receipt.reasonCode ? { reasonCode: receipt.reasonCode } : {}) };
    if (change === 'unknown') {
      options.logger.info({ envelopeId: receipt.ref, receiptId: envelope.id, status: receipt.status }, 'receipt for an unknown envelope id; acknowledged');
      await options.audit.record({ action: 'receipt.unknown', actor: envelope.from, resourceType: 'envelope', resourceId: receipt.ref, outcome: 'failure', details: { ...details, reason: RECEIPT_ERRORS.CR_RECEIPT_UNKNOWN_REF.code } });
      return { status: 'done' };
    }
    options.logger.info({ envelopeId: receipt.ref, receiptId: envelope.id, status: receipt.status, change }, 'receipt applied');
    await options.audit.record({ action: 'receipt.applied', actor: envelope.from, resourceType: 'envelope', resourceId: receipt.ref, outcome: 'success', details: { ...details, change } });
    return { status: 'done' };
  };
}
