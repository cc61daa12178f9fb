import type { Logger } from 'pino';
import { overlapsReceivedAudit, type EnvelopeEffect } from '../../core/relay/inbound.ts';
import type { ReceiptSender } from '../../core/receipts/receipts.ts';
import type { ApplyLedger } from '../../core/state/applyLedger.ts';
import type { Inbox } from './inbox.ts';
import type { MarkRetry } from './remark.ts';

/** Options for {@link inboxEffect}. */
export interface InboxEffectOptions {
  /** Envelope ids held and applied, shared by every app instance (holds kept by the process's liveness lease). */
  ledger: ApplyLedger;
  /** Service logger. */
  logger: Logger;
  /** Tells the interface `held` (in the inbox) and `acknowledged` (the application acked it). */
  receipts?: Pick<ReceiptSender, 'send'>;
  /** Marks again, in the background, an acknowledged id whose mark failed at the ack (remark.ts). */
  remark?: Pick<MarkRetry, 'add'>;
}

/**
 * The effect of a submission on the app service: hold it in the inbox, once across the
 * fleet. The envelope (already opened and checked: its signed id counts) is claimed in the
 * state table first, while its `message.received` audit line is written (it is shown only once
 * both are done): an id already applied is a duplicate (acknowledged, audited, no second
 * record); an id another live instance holds is retried after that holder's lease, never
 * deleted (it may be the original of a crashed holder). The handler settles, and the SQS
 * message is deleted, only when the application acknowledges the record, after the id is
 * marked applied and its `acknowledged` receipt is out; at shutdown the hold is released and SQS
 * redelivers it. The ack is answered once the id is marked applied (a copy is then a duplicate),
 * or else once the delete happened or failed (`onDeleted`; the mark is then tried again in the
 * background, `remark`): it does not wait for the receipt,
 * which lingers for company (`RECEIPT_LINGER_MS`). Once held, the consumer may drop its ciphertext.
 * A copy this process claimed (its own hold) just before the ack marked the id applied is settled
 * like the acknowledged record and never shown again ({@link Inbox.acknowledged}).
 */
export function inboxEffect(inbox: Inbox, options: InboxEffectOptions): EnvelopeEffect {
  const { ledger, logger } = options;
  // The claim (a state-table round trip nobody sees) overlaps the `message.received` audit write;
  // the record is shown only once both are done, and a claim taken for a failed write is given up.
  return overlapsReceivedAudit(async (envelope, message, signal, received) => {
    const claiming = ledger.claim(envelope.id);
    const [claimed, written] = await Promise.allSettled([claiming, received]);
    if (written.status === 'rejected') {
      if (claimed.status === 'fulfilled' && claimed.value.status === 'claimed') await ledger.release(envelope.id).catch(() => undefined);
      throw written.reason;
    }
    if (claimed.status === 'rejected') throw claimed.reason;
    const claim = claimed.value;
    // Applied before (maybe by a process killed before its receipt went out): say so again; the interface applies it once.
    if (claim.status === 'applied') {
      await options.receipts?.send({ ref: envelope.id, status: 'acknowledged' }, { linger: true });
      return { status: 'duplicate' };
    }
    if (claim.status === 'held-elsewhere') return { status: 'retry', reason: 'CR_INBOX_HELD_ELSEWHERE', afterSeconds: Math.max(1, Math.ceil(claim.leftMs / 1000)) };
    // A copy claimed by this process (its own hold) before the application's ack marked the id
    // applied, arriving after the ack: the acknowledged record's copy, settled like it, never shown again.
    if (!inbox.acknowledged(envelope.id)) {
      message.releaseBody?.();
      const held = inbox.hold(envelope, signal);
      // A hold again after a release sends `held` again: the interface's status does not move twice.
      void options.receipts?.send({ ref: envelope.id, status: 'held' }, { linger: true });
      const outcome = await held;
      if (outcome !== 'acked') {
        await ledger.release(envelope.id).catch(() => undefined);
        return { status: 'release' };
      }
    }
    try {
      await ledger.applied(envelope.id);
      // Final: a copy SQS delivers again is a duplicate. The application need not wait for the receipt or the delete.
      inbox.applied(envelope.id);
    } catch (err) {
      // The record was acknowledged: showing it again would be a second effect. Delete it;
      // only a replayed copy arriving after this process's lease could then be held again. The
      // mark is tried again in the background, so that a repeated ack at any instance finds it.
      logger.error({ envelopeId: envelope.id, code: (err as { name?: string }).name }, 'could not mark the envelope applied');
      options.remark?.add(envelope.id);
    }
    // The message waits on its receipt (a crash before it is out redelivers a copy, which says it
    // again); the receipt waits for company, up to RECEIPT_LINGER_MS.
    await options.receipts?.send({ ref: envelope.id, status: 'acknowledged' }, { linger: true });
    return { status: 'done', onDeleted: (deleted) => inbox.deleted(envelope.id, deleted) };
  });
}
