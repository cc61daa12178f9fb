import { RelayPathError } from '../../core/relay/errors.ts';
import { ttlAfter, type StateTable } from '../../core/state/table.ts';
import { SmsError } from './errors.ts';

/** What a send under an Idempotency-Key may do, or what an earlier request with the key did. */
export type SmsClaim =
  /** No key: send. */
  | { kind: 'none' }
  /** The key is this request's now: send, then say how it ended ({@link SmsSendClaims.sent} / `failed`). */
  | { kind: 'claimed'; pk: string; lease: number }
  /** An earlier request with the key sent the message: answer its sid, send nothing. */
  | { kind: 'sent'; sid: string; status: string; sentAt: string };

/** Options for {@link createSmsSendClaims}. */
export interface SmsSendClaimsOptions {
  /** The app's state table: claims are shared by every instance. */
  table: StateTable;
  /** How long a key is remembered, seconds. */
  ttlSeconds: number;
  /** How long a claim whose send has not finished blocks the key (default 60 s: the create call with its retries). */
  leaseMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * `Idempotency-Key` on `POST /v1/messages`, once across the fleet. SignalWire takes no
 * idempotency key of its own, so a message whose create call may have reached it is never
 * sent again under the same key: the claim is answered `CR_SMS_OUTCOME_UNKNOWN` instead.
 */
export interface SmsSendClaims {
  /**
   * Claims `key` of `caller` for a request whose body has `digest`: `none` without a key, `claimed`
   * for the first request, `sent` for one after a send. Throws `CR_IDEMPOTENCY_KEY_INVALID` (400),
   * `CR_IDEMPOTENCY_KEY_REUSED` (409, another body), `CR_SMS_SEND_IN_PROGRESS` (409, another request
   * with the key is sending; `Retry-After`) or `CR_SMS_OUTCOME_UNKNOWN` (409, a request with the key
   * stopped while its create call may have reached SignalWire).
   */
  claim(caller: string, key: string | undefined, digest: string): Promise<SmsClaim>;
  /** The claimed send succeeded: later requests with the key get this sid. */
  sent(claim: SmsClaim, result: { sid: string; status: string; sentAt: string }): Promise<void>;
  /**
   * The claimed send failed. `maybeSent`: SignalWire may have created the message (a timeout, a 5xx
   * other than 503), so the key answers `CR_SMS_OUTCOME_UNKNOWN`; otherwise the key is free again.
   */
  failed(claim: SmsClaim, maybeSent: boolean): Promise<void>;
  /**
   * The pending send job found the message of a claim whose request stopped, or failed, while sending
   * (pendingSend.ts): later requests with the key get its sid, as after {@link SmsSendClaims.sent}.
   * Only that claim, still `sending` or `unknown`, is changed.
   */
  recovered(claim: { pk: string; lease: number }, result: { sid: string; status: string; sentAt: string }): Promise<void>;
}

const KEY = /^[\x21-\x7e]{1,200}$/;

/** Claims on the app's state table: items `smsidem#<caller>#<key>`. */
export function createSmsSendClaims(options: SmsSendClaimsOptions): SmsSendClaims {
  const { table } = options;
  const leaseMs = options.leaseMs ?? 60_000;
  const now = options.now ?? Date.now;
  const names = { '#s': 'state' };
  return {
    async claim(caller, key, digest) {
      if (key === undefined) return { kind: 'none' };
      if (!KEY.test(key)) throw new RelayPathError('CR_IDEMPOTENCY_KEY_INVALID', 'Idempotency-Key: expected 1 to 200 visible ASCII characters');
      const pk = `smsidem#${caller}#${key}`;
      for (let round = 0; ; round++) {
        const t = now();
        const lease = t + leaseMs;
        const claimed = await table.put(
          { pk, state: 'sending', digest, lease, ttl: ttlAfter(options.ttlSeconds, t) },
          // An item past its TTL that DynamoDB has not deleted yet counts as absent.
          { condition: 'attribute_not_exists(pk) OR #ttl < :nowSec', names: { '#ttl': 'ttl' }, values: { ':nowSec': Math.floor(t / 1000) } },
        );
        if (claimed) return { kind: 'claimed', pk, lease };
        const item = await table.get(pk);
        // Given up (a send that surely failed) between the put and the get: claim again.
        if (!item) {
          if (round < 3) continue;
          throw new SmsError('CR_SMS_SEND_IN_PROGRESS', 'Another request with this Idempotency-Key is sending the message; retry later.', { details: { retryAfter: 1 } });
        }
        if (item.digest !== digest) throw new RelayPathError('CR_IDEMPOTENCY_KEY_REUSED', 'Idempotency-Key was already used with a different request body');
        if (item.state === 'sent') return { kind: 'sent', sid: String(item.sid), status: String(item.status), sentAt: String(item.sentAt) };
        const left = Number(item.lease) - t;
        if (item.state === 'sending' && left > 0) {
          throw new SmsError('CR_SMS_SEND_IN_PROGRESS', 'Another request with this Idempotency-Key is sending the message; retry later.', { details: { retryAfter: Math.max(1, Math.ceil(left / 1000)) } });
        }
        throw new SmsError('CR_SMS_OUTCOME_UNKNOWN', "A request with this Idempotency-Key stopped while SignalWire may have taken the message; it is not sent again under this key. If SignalWire took it, a retry about a minute after the send answers its sid; until then, or if it did not, check the audit trail (sms.sending without sms.sent) or SignalWire's log, and send with a new key if it did not go.");
      }
    },
    async sent(claim, result) {
      if (claim.kind !== 'claimed') return;
      await table.update(claim.pk, {
        update: 'SET #s = :sent, sid = :sid, #st = :status, sentAt = :at',
        condition: '#s = :sending AND lease = :lease',
        names: { ...names, '#st': 'status' },
        values: { ':sent': 'sent', ':sid': result.sid, ':status': result.status, ':at': result.sentAt, ':sending': 'sending', ':lease': claim.lease },
      });
    },
    async recovered(claim, result) {
      await table.update(claim.pk, {
        update: 'SET #s = :sent, sid = :sid, #st = :status, sentAt = :at',
        condition: '(#s = :sending OR #s = :unknown) AND lease = :lease',
        names: { ...names, '#st': 'status' },
        values: { ':sent': 'sent', ':sid': result.sid, ':status': result.status, ':at': result.sentAt, ':sending': 'sending', ':unknown': 'unknown', ':lease': claim.lease },
      });
    },
    async failed(claim, maybeSent) {
      if (claim.kind !== 'claimed') return;
      const condition = { condition: '#s = :sending AND lease = :lease', names, values: { ':sending': 'sending', ':lease': claim.lease } };
      if (maybeSent) await table.update(claim.pk, { update: 'SET #s = :unknown', ...condition, values: { ...condition.values, ':unknown': 'unknown' } });
      else await table.delete(claim.pk, condition);
    },
  };
}
