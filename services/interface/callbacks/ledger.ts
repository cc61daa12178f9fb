import { ttlAfter, type StateTable } from '../../core/state/table.ts';

/** What starting a callback attempt found. */
export type CallbackStart = { status: 'go'; attempt: number } | { status: 'finished'; state: string; httpStatus?: number } | { status: 'busy'; retryAfterSeconds: number };

/**
 * Partner callbacks in the interface's state table (items `callback#<webhook id>`): the attempts
 * counted fleet-wide (not SQS receives), one attempt at a time under a lease, and a callback that
 * was delivered (or stopped by 410) is never sent again, whatever duplicate job or redelivery comes.
 */
export interface CallbackLedger {
  /** Starts an attempt (counted), unless the callback is finished or another attempt holds its lease. */
  begin(webhookId: string): Promise<CallbackStart>;
  /** Ends it: `delivered` (2xx) or `stopped` (410); later jobs for it are acknowledged without a request. */
  finish(webhookId: string, state: 'delivered' | 'stopped', httpStatus: number): Promise<void>;
  /** Ends this attempt without an answer that finishes it, so the next one may start at once. */
  abandon(webhookId: string): Promise<void>;
  /** Records a dead-lettered callback; a redrive from the DLQ starts it again. */
  failed(webhookId: string, reason: string): Promise<void>;
}

/** Options for {@link createCallbackLedger}. */
export interface CallbackLedgerOptions {
  /** The interface's state table. */
  table: StateTable;
  /** This process (holderId()). */
  holder: string;
  /** An attempt's lease, ms: longer than PARTNER_CALLBACK_TIMEOUT_MS. */
  leaseMs: number;
  /** How long a callback is remembered, seconds (the queue retention). */
  ttlSeconds: number;
  /** Clock (tests). */
  now?: () => number;
}

/** Creates the callback ledger on the interface's state table. */
export function createCallbackLedger(options: CallbackLedgerOptions): CallbackLedger {
  const { table, holder, leaseMs } = options;
  const now = options.now ?? Date.now;
  const pk = (id: string): string => `callback#${id}`;
  const names = { '#s': 'state', '#ttl': 'ttl' };
  return {
    async begin(webhookId) {
      const t = now();
      const values = { ':sending': 'sending', ':me': holder, ':lease': t + leaseMs, ':ttl': ttlAfter(options.ttlSeconds, t), ':one': 1, ':nowSec': Math.floor(t / 1000) };
      // The next attempt: the first, or the one after an attempt whose holder stopped (its lease ran out).
      const started = await table.update(pk(webhookId), {
        update: 'SET #s = :sending, holder = :me, leaseUntil = :lease, #ttl = :ttl ADD attempts :one',
        condition: 'attribute_not_exists(pk) OR (#ttl >= :nowSec AND #s = :sending AND leaseUntil < :now)',
        names,
        values: { ...values, ':now': t },
      });
      if (started) return { status: 'go', attempt: Number(started.attempts) };
      // Dead-lettered, then redriven from the DLQ by an operator (or expired): it starts over, its attempts counted from 1.
      const restarted = await table.update(pk(webhookId), {
        update: 'SET #s = :sending, holder = :me, leaseUntil = :lease, #ttl = :ttl, attempts = :one REMOVE reason',
        condition: '#s = :failed OR #ttl < :nowSec',
        names,
        values: { ...values, ':failed': 'failed' },
      });
      if (restarted) return { status: 'go', attempt: 1 };
      const item = await table.get(pk(webhookId));
      if (!item || item.state === 'sending') return { status: 'busy', retryAfterSeconds: Math.max(1, Math.ceil((Number(item?.leaseUntil ?? 0) - t) / 1000)) };
      return { status: 'finished', state: String(item.state), ...(item.httpStatus === undefined ? {} : { httpStatus: Number(item.httpStatus) }) };
    },
    async finish(webhookId, state, httpStatus) {
      await table.update(pk(webhookId), {
        update: 'SET #s = :state, httpStatus = :status, finishedAt = :at REMOVE holder, leaseUntil',
        names: { '#s': 'state' },
        values: { ':state': state, ':status': httpStatus, ':at': new Date(now()).toISOString() },
      });
    },
    async abandon(webhookId) {
      await table.update(pk(webhookId), {
        update: 'SET leaseUntil = :zero',
        condition: '#s = :sending AND holder = :me',
        names: { '#s': 'state' },
        values: { ':zero': 0, ':sending': 'sending', ':me': holder },
      });
    },
    async failed(webhookId, reason) {
      await table.update(pk(webhookId), {
        update: 'SET #s = :failed, reason = :reason REMOVE holder, leaseUntil',
        names: { '#s': 'state' },
        values: { ':failed': 'failed', ':reason': reason },
      });
    },
  };
}
