import type { Logger } from 'pino';
import type { ApplyLedger } from '../../core/state/applyLedger.ts';

/** Renews the apply-ledger leases of the records this process holds. */
export interface LeaseRenewal {
  /** Renews `envelopeId`'s lease every interval until {@link LeaseRenewal.stop} for it. */
  start(envelopeId: string): void;
  /** Stops renewing `envelopeId`'s lease. */
  stop(envelopeId: string): void;
  /** Ids being renewed now. */
  readonly size: number;
}

/**
 * One timer for every held record instead of one per record (10,000 held records were 10,000
 * timers and closures, ~250 bytes each): every `intervalMs`, each held id's lease is renewed.
 * A record is renewed at most `intervalMs` after it was claimed, then every `intervalMs`, as
 * with a timer of its own; the timer runs only while something is held.
 */
export function createLeaseRenewal(ledger: ApplyLedger, intervalMs: number, logger: Logger): LeaseRenewal {
  const held = new Set<string>();
  let timer: ReturnType<typeof setInterval> | undefined;
  const tick = (): void => {
    for (const id of held) {
      ledger.renew(id).catch((err: unknown) => logger.warn({ envelopeId: id, code: (err as { name?: string }).name }, 'hold lease renewal failed'));
    }
  };
  return {
    start(id) {
      held.add(id);
      timer ??= setInterval(tick, intervalMs);
    },
    stop(id) {
      held.delete(id);
      if (held.size === 0 && timer !== undefined) {
        clearInterval(timer);
        timer = undefined;
      }
    },
    get size() {
      return held.size;
    },
  };
}
