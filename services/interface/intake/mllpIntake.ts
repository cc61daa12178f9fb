import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { isRelayError } from '../../core/errors/relayError.ts';
import { loadTokenFile } from '../../core/http/auth.ts';
import type { AuthFailureLimiter } from '../../core/http/authFailures.ts';
import { hashId } from '../../core/log/logger.ts';
import { formatFor } from '../../core/relay/contentTypes.ts';
import type { Idempotency } from '../../core/relay/idempotency.ts';
import type { Outbound } from '../../core/relay/outbound.ts';
import type { EmergencySwitch } from '../../core/runtime/emergency.ts';
import { buildAck, Hl7ParseError, parseHl7, type AckError, type ParsedHl7 } from '../mllp/hl7.ts';
import type { MllpAnswer } from '../mllp/listener.ts';
import { partnerAllows, partnerEntrySchema, type PartnerEntry } from './partners.ts';
import { submissionAccepted } from './accepted.ts';

/** Who is on the other end of an MLLP connection, as the listener knows it. */
export interface MllpPeer {
  /** Source address. */
  ip: string;
  /** SHA-256 fingerprint of the client certificate (upper-case hex, no colons), on TLS. */
  certSha256?: string;
}

/** The partners that may use MLLP, from the partners file; reloadable. */
export interface MllpPartners {
  /** The partner for this peer and message (certificate; or source CIDR plus MSH-4), or undefined. */
  identify(peer: MllpPeer, sendingFacility: string): PartnerEntry | undefined;
  /** Re-reads the partners file. */
  reload(): void;
}

/** Loads the MLLP partners from the partners file (the same file and entries as HTTP intake). */
export function loadMllpPartners(file: string, plain: boolean): MllpPartners {
  let partners: PartnerEntry[] = [];
  const load = (): void => {
    partners = loadTokenFile(file, partnerEntrySchema).filter((p) => p.mllp);
  };
  load();
  return {
    identify(peer, facility) {
      if (peer.certSha256) {
        const p = partners.find((x) => x.mllp?.clientCertSha256 === peer.certSha256);
        return p && partnerAllows(p, peer.ip) ? p : undefined;
      }
      // Without a certificate only the operator's explicit plain-TCP mode identifies by address and MSH-4.
      if (!plain) return undefined;
      return partners.find((x) => x.mllp?.sendingFacilities?.includes(facility) && x.allowCidrs && partnerAllows(x, peer.ip));
    },
    reload: load,
  };
}

/** Dependencies of {@link createMllpIntake}. */
export interface MllpIntakeOptions {
  /** MLLP partners. */
  partners: MllpPartners;
  /** Seals and sends to `interface-to-app`. */
  outbound: Outbound;
  /** The Idempotency-Key claims HTTP intake uses (state table, shared by every instance), keyed here by (partner, MSH-10). */
  idempotency: Idempotency;
  /** The service's failed-authentication limiter (shared with HTTP): an unidentified peer's messages are counted and audited through it. */
  authFailures: AuthFailureLimiter;
  /** Emergency switch: intake answers AE while on. */
  emergency: EmergencySwitch;
  /** Service logger (ids only; MSH-10 hashed). */
  logger: Logger;
  /** HMAC key for hashing MSH-10 in logs. */
  hmacKey: string;
  /** Clock (rate limits). */
  now?: () => number;
}

/** Handles one whole HL7 message from a partner and returns the ACK to send back (and whether to close the connection). */
export type MllpIntake = (payload: Buffer, peer: MllpPeer) => Promise<MllpAnswer>;

const refusal = (hl7Code: number, code: string, text: string): AckError => ({ hl7Code, code, text });

/**
 * The idempotency key for an MSH-10: `hl7:<MSH-10>` when it is 1 to 196 visible ASCII
 * characters (0x21–0x7E), else `hl7#<SHA-256 of its UTF-8 bytes, lower-case hex>`.
 */
function keyFor(controlId: string): string {
  return /^[\x21-\x7e]{1,196}$/.test(controlId) ? `hl7:${controlId}` : `hl7#${createHash('sha256').update(controlId, 'utf8').digest('hex')}`;
}

/**
 * Partner intake over MLLP. The ACK is positive (`CA`, or `AA` in original mode, with the
 * envelope id in MSA-3) only once the message is sealed and SQS accepted it; a message
 * that cannot be accepted gets `AE` (try again) or `AR` (never as it is) with an ERR segment.
 * A resent MSH-10 from the same partner answers the same envelope id without sending twice.
 * A message no partner matches is answered AR, counted by the shared failed-authentication
 * limiter (one `auth.failure` line per source and window, the rest aggregated) and the
 * connection is closed; a source past that limit is answered AR and closed the same way.
 */
export function createMllpIntake(options: MllpIntakeOptions): MllpIntake {
  const now = options.now ?? Date.now;
  const windows = new Map<string, { start: number; count: number }>();
  const overRate = (partner: PartnerEntry): boolean => {
    const t = now();
    const w = windows.get(partner.name);
    if (!w || t - w.start >= 60_000) {
      windows.set(partner.name, { start: t, count: 1 });
      return false;
    }
    w.count += 1;
    return w.count > partner.rateLimitPerMinute;
  };

  return async (payload, peer) => {
    let parsed: ParsedHl7;
    try {
      parsed = parseHl7(payload);
    } catch (err) {
      const code = err instanceof Hl7ParseError ? err.code : 'CR_MLLP_MESSAGE_MALFORMED';
      options.logger.warn({ code, ip: peer.ip, bytes: payload.length }, 'MLLP message refused');
      const text = err instanceof Hl7ParseError ? err.message : 'unreadable message';
      return { ack: buildAck({ code: 'AR', error: refusal(err instanceof Hl7ParseError ? err.hl7Code : 100, code, text) }) };
    }
    const [ok, transient, reject] = parsed.enhanced ? (['CA', 'CE', 'CR'] as const) : (['AA', 'AE', 'AR'] as const);
    const ref = hashId(options.hmacKey, parsed.controlId);
    const refuse = (code: 'transient' | 'reject', error: AckError, partner?: string): MllpAnswer => {
      options.logger.warn({ code: error.code, partner, ip: peer.ip, controlIdHash: ref }, 'MLLP message refused');
      return { ack: buildAck({ to: parsed, code: code === 'transient' ? transient : reject, error }) };
    };

    const partner = options.partners.identify(peer, parsed.sendingFacility);
    if (!partner) {
      const error = refusal(204, 'CR_MLLP_PARTNER_UNKNOWN', 'no partner is configured for this connection and sending facility');
      // Past its limit a source is still answered, but only counted (in its window's aggregated line), never logged one by one.
      if (options.authFailures.refuse(peer.ip) > 0) return { ack: buildAck({ to: parsed, code: reject, error }), close: true };
      await options.authFailures.fail(peer.ip, { actor: 'anonymous', resourceType: 'route', resourceId: 'MLLP', reason: 'CR_MLLP_PARTNER_UNKNOWN' });
      // The peer is nobody we know: what else it sent on this connection is not read.
      return { ...refuse('reject', error), close: true };
    }
    if (options.emergency.active) return refuse('transient', refusal(207, 'CR_MLLP_UNAVAILABLE', 'intake is paused; resend later'), partner.name);
    let format;
    try {
      format = formatFor('application/hl7-v2', partner.contentTypes);
    } catch {
      return refuse('reject', refusal(200, 'CR_MLLP_CONTENT_NOT_ALLOWED', 'this partner may not send HL7 v2'), partner.name);
    }
    // No checkPayload here: parseHl7 has read the message (UTF-8 checked, any valid MSH-1, not only `|`).
    if (overRate(partner)) return refuse('transient', refusal(206, 'CR_MLLP_RATE_LIMITED', 'rate limit reached; resend later'), partner.name);

    try {
      const details = { contentType: format.contentType, bytes: payload.length, transport: 'mllp' };
      const { id, replayed, created } = await options.idempotency.run(partner.name, keyFor(parsed.controlId), payload, format.contentType, async (decidedId) => {
        return options.outbound.send({
          id: decidedId,
          kind: 'care.submission',
          partner: partner.name,
          contentType: format.contentType,
          // Other character sets travel as the bytes sent (MSH-18 says how to read them).
          bodyEncoding: parsed.utf8 ? 'utf8' : 'base64',
          body: payload,
          actor: partner.name,
          sourceIp: peer.ip,
          // On disk with the send's `message.relayed` line, in the same write, before the send resolves.
          auditWith: submissionAccepted(partner.name, decidedId, peer.ip, details),
        });
      });
      // Answered from an earlier message's claim (the same MSH-10): its lines are written again (it may have stopped before them).
      if (!created) await options.outbound.recordCopy({ id, kind: 'care.submission', actor: partner.name, sourceIp: peer.ip, auditWith: submissionAccepted(partner.name, id, peer.ip, details) });
      options.logger.info({ envelopeId: id, partner: partner.name, replayed, controlIdHash: ref }, 'MLLP submission accepted');
      return { ack: buildAck({ to: parsed, code: ok, text: id }) };
    } catch (err) {
      if (isRelayError(err, 'CR_IDEMPOTENCY_KEY_REUSED')) return refuse('reject', refusal(205, 'CR_MLLP_CONTROL_ID_REUSED', 'this MSH-10 was already used for a different message'), partner.name);
      if (isRelayError(err) && err.status === 413) return refuse('reject', refusal(207, 'CR_MLLP_MESSAGE_TOO_LARGE', 'the message is too large to relay'), partner.name);
      options.logger.error({ err: { code: isRelayError(err) ? err.code : 'unknown' }, partner: partner.name, controlIdHash: ref }, 'MLLP submission could not be relayed');
      return refuse('transient', refusal(207, 'CR_MLLP_UNAVAILABLE', 'the message could not be relayed now; resend later'), partner.name);
    }
  };
}
