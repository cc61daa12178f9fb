import type { Logger } from 'pino';
import { nullAudit, type AuditEvent, type AuditSink } from '../audit/types.ts';
import { buildEnvelope, type BodyEncoding } from '../envelope/envelope.ts';
import { httpErrors } from '../http/errors.ts';
import { silentLogger } from '../log/logger.ts';
import type { Producer } from '../transport/producer.ts';
import { SQS_MAX_MESSAGE_BYTES, sqsMessageSize } from '../transport/size.ts';
import type { RelayCrypto } from './crypto.ts';

/** What a caller relays: the payload and what it is. */
export interface OutboundPayload {
  /** Envelope id decided beforehand (an idempotent retry sends the same id); a fresh UUIDv7 otherwise. */
  id?: string;
  /** Envelope kind, e.g. `care.submission`. */
  kind: string;
  /** Canonical media type. */
  contentType: string;
  /** How the body travels. */
  bodyEncoding: BodyEncoding;
  /** The payload bytes; never logged. */
  body: Buffer;
  /** Partner id (submissions). */
  partner?: string;
  /** Who asked, for the audit trail (a partner id or token name). */
  actor: string;
  /** Source address, for the audit trail. */
  sourceIp?: string;
  /** Ordering bucket on an ordered FIFO queue (`orderingBucket`): same bucket, same order as sent. */
  orderingKey?: string;
  /**
   * The caller's own audit event for this send (the intake's `submission.accepted`), recorded right after
   * `message.relayed` once SQS took the message, so that the two lines go to the trail in one write; the
   * send resolves once both are on disk.
   */
  auditWith?: AuditEvent;
}

/** Options for {@link createOutbound}. */
export interface OutboundOptions {
  /** Seals envelopes. */
  crypto: RelayCrypto;
  /** Sends to the outbound queue. */
  producer: Producer;
  /** This service's name (`from`). */
  from: string;
  /** The peer's name (`to`). */
  to: string;
  /** Logical queue (`queue` in the envelope). */
  queue: string;
  /** Audit sink for `message.relayed`. */
  audit?: AuditSink;
  /** pino logger; silent by default. */
  logger?: Logger;
}

/** Seals payloads for the peer and sends them; resolves with the envelope id once SQS accepted it. */
export interface Outbound {
  /**
   * Seals and sends one payload; throws 413 when the sealed message would not fit SQS, 503 when SQS refuses.
   * `beforeSend` (a status write) runs while the payload is sealed; nothing is sent unless it succeeded.
   * `afterSend` (the status write that says SQS took it) runs while the audit lines are written, and the
   * send resolves once both are done. The audit lines are the last step: an `AuditError` means SQS took
   * the message and the line could not be written (`afterSend` ran all the same).
   */
  send(payload: OutboundPayload, beforeSend?: () => Promise<void>, afterSend?: (id: string) => Promise<void>): Promise<string>;
  /**
   * Writes the audit lines of an envelope sent before (`message.relayed`, and the caller's
   * `auditWith`) again, each with `copy: true` in its details, in one write; nothing is sent. For a
   * request answered from an earlier one's Idempotency-Key claim: that request stopped after SQS
   * took the envelope and may not have written them. Required of every outbound path, so that a
   * wrapper cannot drop it.
   */
  recordCopy(copy: RelayedCopy): Promise<void>;
}

/** The envelope of a {@link Outbound.recordCopy}: the fields its first send was audited with. */
export type RelayedCopy = Pick<OutboundPayload, 'kind' | 'actor' | 'sourceIp' | 'auditWith'> & { id: string };

/** Creates the outbound path of a service (intake on the interface, chart updates on the app). */
export function createOutbound(options: OutboundOptions): Outbound {
  const audit = options.audit ?? nullAudit;
  const log = options.logger ?? silentLogger;
  const relayedLine = (p: { id: string; kind: string; actor: string; sourceIp?: string }, copy: boolean): AuditEvent => ({
    action: 'message.relayed',
    actor: p.actor,
    resourceType: 'envelope',
    resourceId: p.id,
    outcome: 'success',
    ...(p.sourceIp ? { sourceIp: p.sourceIp } : {}),
    details: { queue: options.queue, kind: p.kind, ...(copy ? { copy } : {}) },
  });
  return {
    async recordCopy(copy) {
      const lines = [relayedLine(copy, true), ...(copy.auditWith ? [{ ...copy.auditWith, details: { ...copy.auditWith.details, copy: true } }] : [])];
      // Recorded in the same turn, the lines go in one write.
      await Promise.all(lines.map((line) => audit.record(line)));
    },
    async send(payload, beforeSend, afterSend) {
      const envelope = buildEnvelope({
        ...(payload.id ? { id: payload.id } : {}),
        kind: payload.kind,
        from: options.from,
        to: options.to,
        queue: options.queue,
        contentType: payload.contentType,
        body: payload.bodyEncoding === 'utf8' ? payload.body.toString('utf8') : new Uint8Array(payload.body),
        ...(payload.partner ? { partner: payload.partner } : {}),
      });
      // Both settle before anything is sent: a failed `beforeSend` sends nothing, its seal is discarded.
      const [sealed] = await Promise.all([options.crypto.seal(envelope), beforeSend?.()]);
      const size = sqsMessageSize(sealed.body, sealed.attributes);
      if (size > SQS_MAX_MESSAGE_BYTES) {
        throw httpErrors.payloadTooLarge(`The sealed message would be ${size} bytes; one relayed message holds at most ${SQS_MAX_MESSAGE_BYTES}. Send a smaller payload.`);
      }
      await options.producer.send({ id: envelope.id, body: sealed.body, attributes: sealed.attributes, ...(payload.orderingKey === undefined ? {} : { orderingKey: payload.orderingKey }) });
      log.info({ envelopeId: envelope.id, queue: options.queue, kind: envelope.kind, bytes: payload.body.length }, 'relayed');
      const relayed = audit.record(relayedLine({ id: envelope.id, kind: envelope.kind, actor: payload.actor, ...(payload.sourceIp ? { sourceIp: payload.sourceIp } : {}) }, false));
      // Recorded in the same turn, the caller's line goes in the same write as `message.relayed`;
      // the caller's status write overlaps that write (it settles before an audit failure is thrown).
      const lines = payload.auditWith ? Promise.all([relayed, audit.record(payload.auditWith)]) : relayed;
      const [written] = await Promise.allSettled([lines, afterSend?.(envelope.id)]);
      if (written.status === 'rejected') throw written.reason;
      return envelope.id;
    },
  };
}

/**
 * The largest payload that can still fit one SQS message once sealed, in the best case
 * (text that needs no JSON escaping): armor is base64 (4/3) of the signed and encrypted
 * packet, plus the envelope fields, signature and key packets. The exact check happens
 * after sealing; this bound lets the HTTP layer refuse hopeless bodies before reading them.
 */
export const MAX_PAYLOAD_BYTES = Math.floor(((SQS_MAX_MESSAGE_BYTES - 4096) * 3) / 4) - 2048;
