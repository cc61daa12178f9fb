import type { AuditSink } from '../audit/types.ts';

/** An audit trail whose failed writes are remembered for the alerts. */
export type WatchedAudit<A extends AuditSink> = A & {
  /** When the last `record` failed (epoch ms), if ever. */
  readonly lastFailureAt: number | undefined;
};

/**
 * Wraps an audit trail so that a failed `record` (disk full, file gone) is remembered for
 * the `CareRelayAuditTrailFailing` condition; the failure still reaches the caller. Every
 * other member is the trail's own, unchanged.
 */
export function watchAuditFailures<A extends AuditSink>(audit: A, now: () => number = Date.now): WatchedAudit<A> {
  let lastFailureAt: number | undefined;
  const record: AuditSink['record'] = async (event) => {
    try {
      await audit.record(event);
    } catch (err) {
      lastFailureAt = now();
      throw err;
    }
  };
  return new Proxy(audit, {
    get(target, prop, receiver) {
      if (prop === 'record') return record;
      if (prop === 'lastFailureAt') return lastFailureAt;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  }) as WatchedAudit<A>;
}
