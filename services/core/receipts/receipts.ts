import type { Logger } from 'pino';
import type { AuditSink } from '../audit/types.ts';
import type { EnvelopeEffect } from '../relay/inbound.ts';
import type { Outbound } from '../relay/outbound.ts';
import { ttlAfter, type StateTable } from '../state/table.ts';
import type { StatusResult } from '../state/statusStore.ts';
import { RECEIPT_ERRORS } from './errors.ts';
import { DEFAULT_RECEIPT_LINGER_MS, encodeReceipt, encodeReceipts, MAX_RECEIPTS_PER_ENVELOPE, parseReceipts, RECEIPT_CONTENT_TYPE, RECEIPT_KIND, RECEIPTS_CONTENT_TYPE, type CarriedReceipt, type Receipt } from './receipt.ts';

/** Sends receipts to the peer; never throws (a lost receipt leaves a status behind, never a message). */
export interface ReceiptSender {
  /**
   * Seals and sends one receipt (`at` defaults to now): true once SQS took it; a failure is logged
   * with ids and codes only. `linger`: it may wait for company, up to the sender's `lingerMs`. A
   * lingering `held` leaves sooner only with a receipt about the same envelope (its `acknowledged`),
   * so the peer can apply both in one write; any other lingering receipt also joins the next
   * envelope that leaves for another reason (a receipt that does not linger, or one whose wait is over).
   */
  send(receipt: Omit<Receipt, 'at'> & { at?: string }, options?: { linger?: boolean }): Promise<boolean>;
  /**
   * Sends every receipt given so far without waiting out their linger, lets none given later linger,
   * and resolves once each given so far has gone or failed: a stopping service calls it as its stop
   * begins (the messages that wait on a lingering receipt can then settle before its consumers stop)
   * and again before its SQS clients close.
   */
  flush(): Promise<void>;
}

/** Options for {@link createReceiptSender}. */
export interface ReceiptSenderOptions {
  /** The service's outbound path to the peer (receipts are never sent under an Idempotency-Key: `send` only). */
  outbound: Pick<Outbound, 'send'>;
  /** This service's name (the envelopes' actor). */
  service: string;
  /** Service logger. */
  logger: Logger;
  /**
   * The most receipts one envelope carries (1 to {@link MAX_RECEIPTS_PER_ENVELOPE}; default the
   * most). A receipt given while no envelope is on its way goes out at once (a lingering one after
   * `lingerMs`), alone in the single form (`application/vnd.care-relay.receipt+json`) unless others
   * came in the same turn; the ones given while an envelope is on its way go together in the next.
   * 1 sends each on its own, as a peer that does not read several per envelope needs.
   */
  maxPerEnvelope?: number;
  /** How long a receipt sent with `linger` waits, ms (default {@link DEFAULT_RECEIPT_LINGER_MS}; `RECEIPT_LINGER_MS`). */
  lingerMs?: number;
}


interface Waiting {
  receipt: Receipt;
  done: (sent: boolean) => void;
  /** A lingering receipt: when its wait is over (`performance.now()`, ms). */
  due?: number;
}

/**
 * Creates the receipt sender of a service on its outbound path. One envelope is on its way at a
 * time; the receipts given meanwhile share the next one, so a burst costs a few seals, not one per
 * receipt. A lingering receipt joins an envelope once its wait is over, or with one that leaves sooner
 * (a lingering `held` only with a receipt about the same envelope).
 */
export function createReceiptSender(options: ReceiptSenderOptions): ReceiptSender {
  const most = Math.min(MAX_RECEIPTS_PER_ENVELOPE, Math.max(1, Math.floor(options.maxPerEnvelope ?? MAX_RECEIPTS_PER_ENVELOPE)));
  const waiting: Waiting[] = [];
  let sending = false;
  let scheduled = false;
  let timer: NodeJS.Timeout | undefined;
  /** Set by `flush`: the service is stopping, nothing lingers any more. */
  let closing = false;
  const unsettled = new Set<Promise<boolean>>();
  const lingerMs = Math.max(0, options.lingerMs ?? DEFAULT_RECEIPT_LINGER_MS);

  const sendEnvelope = async (batch: readonly Receipt[]): Promise<boolean> => {
    const one = batch.length === 1;
    try {
      await options.outbound.send({
        kind: RECEIPT_KIND,
        contentType: one ? RECEIPT_CONTENT_TYPE : RECEIPTS_CONTENT_TYPE,
        bodyEncoding: 'utf8',
        body: Buffer.from(one ? encodeReceipt(batch[0]!) : encodeReceipts(batch), 'utf8'),
        actor: options.service,
        // On an ordered FIFO queue receipts need no order among envelopes (a status only moves forward):
        // a group per envelope the (first) receipt names, so they flow side by side instead of one at a time.
        orderingKey: `receipt-${batch[0]!.ref}`,
      });
      return true;
    } catch (err) {
      const code = (err as { code?: string; name?: string }).code ?? (err as { name?: string }).name;
      for (const r of batch) options.logger.warn({ envelopeId: r.ref, status: r.status, code }, 'receipt could not be sent');
      return false;
    }
  };

  /** Wakes the sender when the first lingering receipt left waiting is due. */
  const arm = (): void => {
    clearTimeout(timer);
    timer = undefined;
    let due = Infinity;
    for (const w of waiting) if (w.due !== undefined && w.due < due) due = w.due;
    if (due === Infinity) return;
    timer = setTimeout(() => {
      timer = undefined;
      next();
    }, Math.max(0, Math.ceil(due - performance.now())));
  };

  const next = (): void => {
    if (sending || waiting.length === 0) return;
    // An envelope leaves when a receipt does not linger or its wait is over. It takes those, every other
    // lingering receipt but a `held` (nothing more is coming about its envelope, so company is all it
    // waits for), and a lingering `held` about an envelope one of those is about (with its
    // `acknowledged`); in their order.
    const now = performance.now() + 1;
    const leaves = (w: Waiting): boolean => w.due === undefined || w.due <= now;
    if (!waiting.some(leaves)) {
      arm();
      return;
    }
    const refs = new Set<string>();
    for (const w of waiting) if (leaves(w) || w.receipt.status !== 'held') refs.add(w.receipt.ref);
    const batch: Waiting[] = [];
    for (let i = 0; i < waiting.length && batch.length < most; ) {
      const w = waiting[i]!;
      if (refs.has(w.receipt.ref)) batch.push(...waiting.splice(i, 1));
      else i++;
    }
    arm();
    if (batch.length === 0) return;
    sending = true;
    void sendEnvelope(batch.map((w) => w.receipt)).then((sent) => {
      sending = false;
      for (const w of batch) w.done(sent);
      next();
    });
  };

  return {
    send(receipt, sendOptions) {
      const full: Receipt = { ...receipt, at: receipt.at ?? new Date().toISOString() };
      const sent = new Promise<boolean>((done) => {
        if (sendOptions?.linger && !closing) {
          waiting.push({ receipt: full, done, due: performance.now() + lingerMs });
          if (!timer && !sending) arm();
          return;
        }
        waiting.push({ receipt: full, done });
        // The receipts given in the same turn of the event loop go together.
        if (scheduled) return;
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          next();
        });
      });
      unsettled.add(sent);
      void sent.then(() => unsettled.delete(sent));
      return sent;
    },
    async flush() {
      closing = true;
      for (const w of waiting) w.due = 0;
      next();
      await Promise.all([...unsettled]);
    },
  };
}

/**
 * Applies a receipt to this service's status of the envelope it names; `receiptId` (the receipt's
 * own envelope id) is kept with the step it writes, so its second copy answers `sameReport`.
 */
export type ApplyReceipt = (receipt: Receipt, from: string, receiptId: string) => Promise<StatusResult>;

/**
 * Applies the receipts of one envelope about the same envelope (in their order) in one write, when
 * each would move the status in turn (`held` then `acknowledged`); undefined when not, with nothing
 * written: they are then applied one at a time.
 */
export type ApplyReceiptsInTurn = (carried: readonly CarriedReceipt[], from: string) => Promise<StatusResult | undefined>;

/** Options for {@link receiptEffect}. */
export interface ReceiptEffectOptions {
  /** This service's state table: receipt ids already applied. */
  table: StateTable;
  /** How long an applied receipt id is remembered, seconds (the queue retention). */
  ttlSeconds: number;
  /** Moves the status the receipt is about. */
  apply: ApplyReceipt;
  /** Moves it through several steps in one write, when it can ({@link ApplyReceiptsInTurn}); without it, one write per receipt. */
  applyInTurn?: ApplyReceiptsInTurn;
  /** `receipt.applied`, `receipt.unknown`. */
  audit: AuditSink;
  /** This service's name (the audit actor). */
  service: string;
  /** Service logger. */
  logger: Logger;
}

/** How many receipts of one envelope (about different envelopes) are applied at once. */
const APPLY_CONCURRENCY = 8;

/**
 * The effect of a `delivery.receipt` envelope: an invalid one is quarantined (all its receipts: one
 * bad receipt refuses the envelope); each receipt of a valid one moves the status it names
 * (forward only), is audited `receipt.applied`, and its own id is remembered, so a second copy is
 * acknowledged as a duplicate (audited `message.duplicate`, and each of its receipts again with
 * `copy: true`: the first copy's line may be missing after a crash between its write and its line).
 * A receipt that wrote its step (`moved`, `filled`) is remembered by that step (its id is kept
 * there in the same write: one call); one that wrote nothing (the step was known, or the id is
 * unknown) by a `receipt#<id>` item, as before.
 * A receipt naming an id this service has no status for is audited `receipt.unknown` and
 * acknowledged: never retried. A receipt never causes a receipt.
 * The receipts of one envelope about different envelopes are applied side by side, those about the
 * same one in their order: in one write (`applyInTurn`) when each moves the status in turn, as
 * `held` and `acknowledged` sent together do; each is still audited on its own. When one fails,
 * the envelope is received again: the ones applied before are then known by their ids and skipped.
 */
export function receiptEffect(options: ReceiptEffectOptions): EnvelopeEffect {
  const applied = (receipt: Receipt, receiptId: string, from: string, change: StatusResult['change'], copy = false): Promise<void> => {
    options.logger.info({ envelopeId: receipt.ref, receiptId, status: receipt.status, change, ...(copy ? { copy } : {}) }, copy ? 'receipt applied before; its copy audited' : 'receipt applied');
    const details = { receiptId, status: receipt.status, ...(receipt.reasonCode ? { reasonCode: receipt.reasonCode } : {}), change, ...(copy ? { copy } : {}) };
    return options.audit.record({ action: 'receipt.applied', actor: from, resourceType: 'envelope', resourceId: receipt.ref, outcome: 'success', details });
  };
  const unknown = (receipt: Receipt, receiptId: string, from: string, copy = false): Promise<void> => {
    const details = { receiptId, status: receipt.status, ...(receipt.reasonCode ? { reasonCode: receipt.reasonCode } : {}), reason: RECEIPT_ERRORS.CR_RECEIPT_UNKNOWN_REF.code, ...(copy ? { copy } : {}) };
    options.logger.info({ envelopeId: receipt.ref, receiptId, status: receipt.status, ...(copy ? { copy } : {}) }, 'receipt for an unknown envelope id; acknowledged');
    return options.audit.record({ action: 'receipt.unknown', actor: from, resourceType: 'envelope', resourceId: receipt.ref, outcome: 'failure', details });
  };

  /** Applies the receipts about one envelope together: true when one write moved it through all of them. */
  const applyTogether = async (group: readonly CarriedReceipt[], from: string): Promise<boolean> => {
    if (group.length < 2 || !options.applyInTurn) return false;
    const result = await options.applyInTurn(group, from);
    if (!result) return false;
    for (const c of group) await applied(c.receipt, c.id, from, result.change);
    return true;
  };

  /** Applies one receipt: true when it was new, false when it is a copy of one applied before. */
  const applyOne = async (receipt: Receipt, receiptId: string, from: string): Promise<boolean> => {
    // A step is written once (a status only moves forward), so a step this receipt wrote marks it
    // applied in the same write; a copy finds its own id there (`sameReport`).
    const { change, sameReport } = await options.apply(receipt, from, receiptId);
    // Its step, or its own item below, is written before its audit line. A copy finding either
    // cannot tell whether that line was written (a crash or a failed audit write in between leaves
    // the step without one), so it writes the line again, marked `copy`: every receipt applied has
    // at least one line, and a second is told apart.
    if (sameReport) {
      await applied(receipt, receiptId, from, 'unchanged', true);
      return false;
    }
    if (change === 'unchanged' || change === 'unknown') {
      // Nothing written: remember the receipt by an item of its own. It also finds the copies of
      // receipts applied before their id was kept with the step. Applying again after a crash
      // before this mark is harmless (the status change is idempotent).
      const t = Date.now();
      const first = await options.table.put(
        { pk: `receipt#${receiptId}`, ref: receipt.ref, ttl: ttlAfter(options.ttlSeconds, t) },
        { condition: 'attribute_not_exists(pk) OR #ttl < :nowSec', names: { '#ttl': 'ttl' }, values: { ':nowSec': Math.floor(t / 1000) } },
      );
      if (!first) {
        await (change === 'unknown' ? unknown(receipt, receiptId, from, true) : applied(receipt, receiptId, from, change, true));
        return false;
      }
    }
    if (change === 'unknown') {
      await unknown(receipt, receiptId, from);
      return true;
    }
    await applied(receipt, receiptId, from, change);
    return true;
  };

  return async (envelope) => {
    const carried = parseReceipts(envelope);
    if (!carried) return { status: 'quarantine', reason: RECEIPT_ERRORS.CR_RECEIPT_INVALID.code };
    const byRef = new Map<string, CarriedReceipt[]>();
    for (const c of carried) byRef.set(c.receipt.ref, [...(byRef.get(c.receipt.ref) ?? []), c]);
    const groups = [...byRef.values()];
    // At most APPLY_CONCURRENCY groups at once (each a few state-table calls), each group in its order.
    let fresh = false;
    let failure: { reason: unknown } | undefined;
    const worker = async (): Promise<void> => {
      for (let group = groups.shift(); group; group = groups.shift()) {
        try {
          if (await applyTogether(group, envelope.from)) {
            fresh = true;
            continue;
          }
          for (const c of group) fresh = (await applyOne(c.receipt, c.id, envelope.from)) || fresh;
        } catch (reason) {
          failure ??= { reason };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(APPLY_CONCURRENCY, groups.length) }, worker));
    if (failure) throw failure.reason;
    return fresh ? { status: 'done' } : { status: 'duplicate' };
  };
}
