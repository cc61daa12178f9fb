import type { Logger } from 'pino';
import { silentLogger } from '../log/logger.ts';

/** A lease kept while the work it covers runs. */
export interface KeptLease {
  /** Aborted when a renewal found the lease taken over: the work must stop, and write no outcome. */
  readonly lost: AbortSignal;
  /** Stops renewing (the work ended) and waits for a renewal under way. */
  stop(): Promise<void>;
}

/** Options for {@link keepLease}. */
export interface KeepLeaseOptions {
  /** Renews the lease: true when renewed, false when it is no longer this attempt's (a failed condition). */
  renew: () => Promise<boolean>;
  /** How often, ms (a third of the lease, as the consumer's heartbeat is of the visibility timeout). */
  everyMs: number;
  /** Logger (a failed renewal is a warning: the next one may succeed within the lease). */
  logger?: Logger;
  /** Ids for the log lines (never a payload). */
  bindings?: Record<string, unknown>;
}

/**
 * Renews a lease every `everyMs` until stopped, one renewal at a time: work shorter than
 * `everyMs` costs no write. A renewal the store refused (an error) is retried at the next
 * tick; one whose condition failed means another attempt took the lease: `lost` is aborted
 * and renewing stops.
 */
export function keepLease(options: KeepLeaseOptions): KeptLease {
  const log = options.logger ?? silentLogger;
  const lost = new AbortController();
  let busy = false;
  let renewing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    renewing = options
      .renew()
      .then((renewed) => {
        if (renewed) return;
        clearInterval(timer);
        log.warn({ ...options.bindings }, 'lease taken over by another attempt; stopping the work');
        lost.abort(new Error('lease taken over'));
      })
      .catch((err: unknown) => log.warn({ ...options.bindings, code: (err as { code?: string; name?: string }).code ?? (err as { name?: string }).name }, 'lease renewal failed'))
      .finally(() => {
        busy = false;
      });
  }, options.everyMs);
  timer.unref();
  return {
    lost: lost.signal,
    async stop() {
      clearInterval(timer);
      await renewing;
    },
  };
}
