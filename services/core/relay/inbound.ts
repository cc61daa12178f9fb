import type { Logger } from 'pino';
import { nullAudit, type AuditSink } from '../audit/types.ts';
import type { Envelope } from '../envelope/envelope.ts';
import { isEnvelopeError } from '../envelope/errors.ts';
import { silentLogger } from '../log/logger.ts';
import { checkWireAttributes } from '../transport/attributes.ts';
import type { HandlerResult, MessageHandler, ReceivedMessage } from '../transport/consumer.ts';
import type { RelayCrypto } from './crypto.ts';
import { RELAY_ERRORS } from './errors.ts';

/** Applies an opened envelope: the effect of a message (inbox hold, EMR delivery). */
export type EnvelopeEffect = (envelope: Envelope, message: ReceivedMessage, signal: AbortSignal) => Promise<HandlerResult>;

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
    if (!audited.has(envelope.id)) {
      await audit.record({
        action: 'message.received',
        actor: options.service,
        resourceType: 'envelope',
        resourceId: envelope.id,
        outcome: 'success',
        details: { queue: options.queue, kind: envelope.kind },
      });
      // Remembered only once written: a failed audit write is retried with the message.
      audited.add(envelope.id);
    }
    const result = await effect(envelope, message, signal);
    if (result.status === 'quarantine' || result.status === 'dead-letter') {
      options.onRejected?.({ id: envelope.id, kind: envelope.kind, reason: result.reason, disposition: result.status === 'quarantine' ? 'quarantined' : 'dead-lettered' });
    }
    return result;
  };
}
