// In-memory ledgers for unit tests of the effects (the DynamoDB ones are tested in test/core/state).
import type { ApplyLedger } from '../../services/core/state/applyLedger.ts';
import type { DeliveryLedger } from '../../services/core/state/deliveryLedger.ts';

/** A delivery ledger of one process: attempts counted from `firstAttempt` per envelope id, delivered ids answered as such. */
export function memoryDeliveryLedger(firstAttempt = 1): DeliveryLedger & { attempts: Map<string, number> } {
  const attempts = new Map<string, number>();
  const delivered = new Map<string, { httpStatus?: number; ackCode?: string }>();
  return {
    attempts,
    async begin(id) {
      const done = delivered.get(id);
      if (done) return { status: 'delivered', ...done };
      const attempt = (attempts.get(id) ?? firstAttempt - 1) + 1;
      attempts.set(id, attempt);
      return { status: 'go', attempt };
    },
    async delivered(id, httpStatus, ackCode) {
      delivered.set(id, { ...(httpStatus === undefined ? {} : { httpStatus }), ...(ackCode === undefined ? {} : { ackCode }) });
    },
    keep: () => ({ lost: new AbortController().signal, stop: async () => undefined }),
    async abandon() {},
    async failed() {},
  };
}

/** An apply ledger of one process: every id claimable until marked applied (`done`). */
export function memoryApplyLedger(): ApplyLedger & { done: Set<string> } {
  const done = new Set<string>();
  return {
    done,
    async claim(id) {
      return done.has(id) ? { status: 'applied' } : { status: 'claimed' };
    },
    async applied(id) {
      done.add(id);
    },
    async release() {},
    async isApplied(id) {
      return done.has(id);
    },
  };
}
