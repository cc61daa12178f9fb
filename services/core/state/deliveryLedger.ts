import type { Logger } from 'pino';
import { keepLease, type KeptLease } from './leaseKeeper.ts';
import { ttlAfter, type StateTable } from './table.ts';

/** What starting a delivery found. */
export type DeliveryStart = { status: 'go'; attempt: number } | { status: 'delivered'; httpStatus?: number; ackCode?: string } | { status: 'busy'; retryAfterSeconds: number };

/** Chart updates delivered to the EMR once in effect, across restarts and instances. */
export interface DeliveryLedger {
  /** Starts an attempt (counted) under a lease, unless it was delivered or another attempt runs. */
  begin(envelopeId: string): Promise<DeliveryStart>;
  /**
   * Keeps attempt `attempt`'s lease while it runs (a streamed delivery outlasts any fixed lease):
   * renewed every third of the lease, conditional on this holder and this attempt; `lost` is
   * aborted when another attempt took it over.
   */
  keep(envelopeId: string, attempt: number): KeptLease;
  /** Records the delivery (the EMR's HTTP status, or the HL7 ACK code over MLLP). */
  delivered(envelopeId: string, status?: number, ackCode?: string): Promise<void>;
  /** Ends attempt `attempt` without a delivery, so the next one may start at once (nothing when another attempt took over). */
  abandon(envelopeId: string, attempt: number): Promise<void>;
  /** Records that the delivery failed for good (dead-lettered), with the reason code. */
  failed(envelopeId: string, reason: string): Promise<void>;
}

/** The ledger's read-only question: whether the envelope was delivered (no attempt is started). */
export interface DeliveredQuery {
  /** True once the delivery was recorded (an item past its ttl counts as gone). */
  isDelivered(envelopeId: string): Promise<boolean>;
}

/** Options for {@link createDeliveryLedger}. */
export interface DeliveryLedgerOptions {
  /** The interface's state table. */
  table: StateTable;
  /** This process (holderId()). */
  holder: string;
  /** An attempt's lease, ms: longer than the EMR timeout (one wait); {@link DeliveryLedger.keep} renews it for longer attempts. */
  leaseMs: number;
  /** How often a kept lease is renewed, ms (default: a third of `leaseMs`). */
  renewMs?: number;
  /** Service logger (lease renewals that failed or found the lease taken over). */
  logger?: Logger;
  /** How long a delivery is remembered, seconds (the queue retention). */
  ttlSeconds: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** Creates the delivery ledger on the interface's state table (items `emr#<envelope id>`). */
export function createDeliveryLedger(options: DeliveryLedgerOptions): DeliveryLedger & DeliveredQuery {
  const { table, holder, leaseMs } = options;
  const now = options.now ?? Date.now;
  const pk = (id: string): string => `emr#${id}`;
  const names = { '#s': 'state', '#ttl': 'ttl' };
  return {
    async begin(envelopeId) {
      const t = now();
      const started = await table.update(pk(envelopeId), {
        update: 'SET #s = :delivering, holder = :me, leaseUntil = :lease, #ttl = :ttl ADD attempts :one',
        // A failed (dead-lettered) delivery may be redriven: it starts again.
        condition: 'attribute_not_exists(pk) OR #ttl < :nowSec OR #s = :failed OR (#s = :delivering AND leaseUntil < :now)',
        names,
        values: { ':delivering': 'delivering', ':failed': 'failed', ':me': holder, ':lease': t + leaseMs, ':ttl': ttlAfter(options.ttlSeconds, t), ':one': 1, ':nowSec': Math.floor(t / 1000), ':now': t },
      });
      if (started) return { status: 'go', attempt: Number(started.attempts) };
      const item = await table.get(pk(envelopeId));
      if (!item || item.state === 'delivering') {
        const left = Math.max(1, Math.ceil((Number(item?.leaseUntil ?? 0) - t) / 1000));
        return { status: 'busy', retryAfterSeconds: left };
      }
      return { status: 'delivered', ...(item.httpStatus === undefined ? {} : { httpStatus: Number(item.httpStatus) }), ...(item.ackCode === undefined ? {} : { ackCode: String(item.ackCode) }) };
    },
    keep(envelopeId, attempt) {
      const renew = async (): Promise<boolean> => {
        const renewed = await table.update(pk(envelopeId), {
          update: 'SET leaseUntil = :lease',
          // Only this attempt's own lease: a later attempt (another holder, or this one after it lapsed) keeps its own.
          condition: '#s = :delivering AND holder = :me AND attempts = :attempt',
          names: { '#s': 'state' },
          values: { ':lease': now() + leaseMs, ':delivering': 'delivering', ':me': holder, ':attempt': attempt },
        });
        return renewed !== undefined;
      };
      return keepLease({ renew, everyMs: options.renewMs ?? Math.max(1, Math.floor(leaseMs / 3)), ...(options.logger ? { logger: options.logger } : {}), bindings: { envelopeId, attempt } });
    },
    async delivered(envelopeId, status, ackCode) {
      await table.update(pk(envelopeId), {
        update: `SET #s = :delivered, ${status === undefined ? '' : 'httpStatus = :status, '}${ackCode === undefined ? '' : 'ackCode = :ack, '}deliveredAt = :at REMOVE holder, leaseUntil`,
        names: { '#s': 'state' },
        values: { ':delivered': 'delivered', ...(status === undefined ? {} : { ':status': status }), ...(ackCode === undefined ? {} : { ':ack': ackCode }), ':at': new Date(now()).toISOString() },
      });
    },
    async abandon(envelopeId, attempt) {
      await table.update(pk(envelopeId), {
        update: 'SET leaseUntil = :zero',
        condition: '#s = :delivering AND holder = :me AND attempts = :attempt',
        names: { '#s': 'state' },
        values: { ':zero': 0, ':delivering': 'delivering', ':me': holder, ':attempt': attempt },
      });
    },
    async isDelivered(envelopeId) {
      const item = await table.get(pk(envelopeId));
      // An item past its ttl counts as gone, as in `begin`.
      return item?.state === 'delivered' && !(Number(item.ttl) < Math.floor(now() / 1000));
    },
    async failed(envelopeId, reason) {
      await table.update(pk(envelopeId), {
        update: 'SET #s = :failed, reason = :reason REMOVE holder, leaseUntil',
        names: { '#s': 'state' },
        values: { ':failed': 'failed', ':reason': reason },
      });
    },
  };
}
