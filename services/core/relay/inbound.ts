import type { Logger } from 'pino';
import { nullAudit, type AuditSink } from '../audit/types.ts';
import type { Envelope } from '../envelope/envelope.ts';
import { isEnvelopeError } from '../envelope/errors.ts';
import { silentLogger } from '../log/logger.ts';
import { checkWireAttributes } from '../transport/attributes.ts';
import { errorCode } from '../transport/errors.ts';
import type { HandlerResult, MessageHandler, ReceivedMessage } from '../transport/consumer.ts';
import type { RelayCrypto } from './crypto.ts';
import { RELAY_ERRORS } from './errors.ts';

/**
 * Applies an opened envelope: the effect of a message (inbox hold, EMR delivery). It is called
 * once `message.received` is durable in the audit trail, unless it is marked with
 * {@link overlapsReceivedAudit}: then it is called while that line is being written and is
 * given the write as `received`, which it must await before the envelope has any effect.
 */
export type EnvelopeEffect = ((envelope: Envelope, message: ReceivedMessage, signal: AbortSignal, received?: Promise<void>) => Promise<HandlerResult>) & {
  /** Set by {@link overlapsReceivedAudit}. */
  readonly overlapsAudit?: true;
};

/**
 * Marks an effect whose first step (a claim in the state table, which nobody sees) may run
 * while `message.received` is written: the two round trips overlap instead of adding up. The
 * effect must await `received` (rejecting when the write failed) before the envelope has any
 * effect (a record shown, a delivery made), and undo its first step when it rejects.
 */
export function overlapsReceivedAudit(effect: (envelope: Envelope, message: ReceivedMessage, signal: AbortSignal, received: Promise<void>) => Promise<HandlerResult>): EnvelopeEffect {
  return Object.assign((envelope: Envelope, message: ReceivedMessage, signal: AbortSignal, received?: Promise<void>) => effect(envelope, message, signal, received ?? Promise.resolve()), {
    overlapsAudit: true as const,
  });
}

/** What each envelope kind accepted on a queue does: kind → effect. A kind not listed is quarantined. */
export type EnvelopeEffects = Readonly<Record<string, EnvelopeEffect>>;

/** Options for {@link createInboundHandler}. */
export interface InboundOptions {
  /** Opens envelopes. */
  crypto: RelayCrypto;
  /** The logical queue received from. */
  queue: string;
  /** The kinds this service accepts on that queue and what each does; any other kind is quarantined. */
  effects: EnvelopeEffects;
  /** This service's name, the audit actor. */
  service: string;
  /** Audit sink for `message.received`. */
  audit?: AuditSink;
  /** pino logger; silent by default. */
  logger?: Logger;
  /** Told of each envelope refused after its signature verified (so its id is the sender's): the rejection receipt. */
  onRejected?: RejectionListener;
  /**
   * The queue's redrive maxReceiveCount, when known: an envelope whose effect fails transiently
   * (retry or throw) on that receive or a later one is told to `onRejected` as dead-lettered,
   * since SQS moves it to the DLQ instead of delivering it again; omitted, none is.
   */
  maxReceiveCount?: number;
}

/** An authentic envelope refused by a check or by its effect: its signed id and kind, the reason, where it went. */
export interface RejectedEnvelope {
  /** The signed envelope id. */
  id: string;
  /** The signed envelope kind. */
  kind: string;
  /** The `CR_*` reason code. */
  reason: string;
  /** Quarantined or dead-lettered. */
  disposition: 'quarantined' | 'dead-lettered';
}

/** Receives {@link RejectedEnvelope}s; must not throw (it runs on the message's path). */
export type RejectionListener = (rejected: RejectedEnvelope) => void;

/** Envelope ids remembered as audited by one handler; the oldest are forgotten past this. */
export const AUDITED_IDS_REMEMBERED = 100_000;

/** A reason that may travel in a receipt; any other (an SDK error name) becomes CR_ENVELOPE_EFFECT_FAILED. */
const RECEIPT_REASON = /^CR_[A-Z0-9_]{1,80}$/;

/** Remembers ids in insertion order, forgetting the oldest beyond `limit`. */
function boundedIdSet(limit: number): { has(id: string): boolean; add(id: string): void } {
  const ids = new Set<string>();
  return {
    has: (id) => ids.has(id),
    add(id) {
      ids.add(id);
      if (ids.size > limit) ids.delete(ids.values().next().value!);
    },
  };
}

/**
 * The consumer handler both services use: check the wire attributes, open (decrypt,
 * verify, check), then apply the effect of the envelope's kind. Every permanent failure
 * quarantines with its code as the reason; the ciphertext is never logged. `message.received`
 * is audited on this process's first successful open of an envelope, whatever SQS's receive
 * count (a receive by an abandoned poll still counts there, though nothing read the message).
 */
export function createInboundHandler(options: InboundOptions): MessageHandler {
  const log = options.logger ?? silentLogger;
  const audit = options.audit ?? nullAudit;
  const audited = boundedIdSet(AUDITED_IDS_REMEMBERED);
  const lastFailures = boundedIdSet(AUDITED_IDS_REMEMBERED);
  /** A transient failure on the last receive SQS allows: the envelope is dead-lettered by redrive; told once per id. */
  const failed = (envelope: Envelope, message: ReceivedMessage, reason: string): void => {
    const max = options.maxReceiveCount;
    if (max === undefined || message.receiveCount < max || lastFailures.has(envelope.id)) return;
    lastFailures.add(envelope.id);
    const code = RECEIPT_REASON.test(reason) ? reason : RELAY_ERRORS.CR_ENVELOPE_EFFECT_FAILED.code;
    log.warn({ envelopeId: envelope.id, queue: options.queue, code, receiveCount: message.receiveCount }, 'failed on its last receive; SQS will dead-letter it');
    options.onRejected?.({ id: envelope.id, kind: envelope.kind, reason: code, disposition: 'dead-lettered' });
  };
  return async (message, signal) => {
    const wire = checkWireAttributes(message.attributes);
    if (!wire.ok) return { status: 'quarantine', reason: wire.reason };
    let envelope: Envelope;
    try {
      envelope = await options.crypto.open(message.body, { queue: options.queue });
    } catch (err) {
      if (isEnvelopeError(err)) {
        log.warn({ messageId: message.messageId, queue: options.queue, code: err.code }, 'rejected message');
        if (err.attributed) options.onRejected?.({ ...err.attributed, reason: err.code, disposition: 'quarantined' });
        return { status: 'quarantine', reason: err.code };
      }
      throw err;
    }
    if (envelope.id !== message.envelopeId) {
      // The clear attribute must match the signed id, or dedupe could be steered from outside.
      return { status: 'quarantine', reason: RELAY_ERRORS.CR_ENVELOPE_ID_MISMATCH.code };
    }
    const effect = Object.hasOwn(options.effects, envelope.kind) ? options.effects[envelope.kind] : undefined;
    if (!effect) return { status: 'quarantine', reason: RELAY_ERRORS.CR_ENVELOPE_UNEXPECTED_KIND.code };
    let result: HandlerResult;
    try {
      const received = audited.has(envelope.id)
        ? undefined
        : audit
            .record({
              action: 'message.received',
              actor: options.service,
              resourceType: 'envelope',
              resourceId: envelope.id,
              outcome: 'success',
              details: { queue: options.queue, kind: envelope.kind },
            })
            // Remembered only once written: a failed audit write is retried with the message.
            .then(() => audited.add(envelope.id));
      if (effect.overlapsAudit && received) {
        // The effect awaits the write itself before acting (and undoes its claim when it failed);
        // both are waited for, so that nothing of this message still runs once it is settled.
        // (Not Promise.allSettled: its bookkeeping would live as long as a record is held.)
        const acting = effect(envelope, message, signal, received);
        void acting.catch(() => undefined);
        try {
          await received;
        } catch (err) {
          await acting.catch(() => undefined);
          throw err;
        }
        result = await acting;
      } else {
        await received;
        result = await effect(envelope, message, signal);
      }
    } catch (err) {
      // The consumer retries a throw: on the last receive, that retry is the DLQ.
      failed(envelope, message, errorCode(err));
      throw err;
    }
    if (result.status === 'quarantine' || result.status === 'dead-letter') {
      options.onRejected?.({ id: envelope.id, kind: envelope.kind, reason: result.reason, disposition: result.status === 'quarantine' ? 'quarantined' : 'dead-lettered' });
    } else if (result.status === 'retry') {
      failed(envelope, message, result.reason);
    }
    return result;
  };
}
