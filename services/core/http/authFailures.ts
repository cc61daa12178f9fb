import type { Logger } from 'pino';
import type { AuditEvent, AuditSink } from '../audit/types.ts';
import { silentLogger } from '../log/logger.ts';

/** One rejected authentication, as the caller would have audited it. */
export interface AuthFailure {
  /** `anonymous`, or the caller that was rejected (e.g. `signalwire-webhook`). */
  actor: string;
  /** `route`, `webhook`, ... */
  resourceType: string;
  /** `POST /v1/submissions`, the webhook path, ... */
  resourceId: string;
  /** Why: `missing`, `invalid`, `signature-invalid`, ... */
  reason: string;
}

/** Options for {@link createAuthFailureLimiter}. */
export interface AuthFailureLimiterOptions {
  /** Where the `auth.failure` lines go. */
  audit: AuditSink;
  /** Failures per source and window before its further requests get 429 (AUTH_FAILURE_LIMIT). */
  limit: number;
  /** Window length in ms (AUTH_FAILURE_WINDOW_SECONDS). */
  windowMs: number;
  /** Most sources tracked at once; beyond, failures are counted under source `other` (not limited). */
  maxSources?: number;
  /** Clock in ms (tests). */
  now?: () => number;
  /** pino logger; silent by default. */
  logger?: Logger;
}

/** Limits and aggregates failed authentications per source, so a flood neither fills the trail nor goes uncounted. */
export interface AuthFailureLimiter {
  /** Seconds until `source` may try again, when it reached the limit in its window (the refused request is counted); else 0. */
  refuse(source: string): number;
  /** Counts a failure: a source's first in a window is audited at once, the rest in one aggregated line at the window's end. */
  fail(source: string, failure: AuthFailure): Promise<void>;
  /** Sources tracked now (bounded by maxSources + 1). */
  readonly size: number;
  /** Stops the timer and writes every pending aggregated line. */
  close(): Promise<void>;
}

/** The source under which failures are counted once maxSources are tracked. */
export const OVERFLOW_SOURCE = 'other';

interface Window {
  start: number;
  first: AuthFailure;
  /** Failures and refusals not yet in an audit line. */
  pending: number;
  /** Failures and refusals in the window, audited or not (what the limit counts). */
  total: number;
  refused: number;
  firstAt: number;
  lastAt: number;
  reasons: Map<string, number>;
}

/**
 * Creates the limiter of one service. Nothing about a failure is lost from the count: every
 * failed or refused request is in exactly one `auth.failure` line's `count` (the first of a
 * window alone, the rest aggregated with `firstAt`, `lastAt`, `refused` and `reasons`).
 */
export function createAuthFailureLimiter(options: AuthFailureLimiterOptions): AuthFailureLimiter {
  const now = options.now ?? Date.now;
  const maxSources = options.maxSources ?? 10_000;
  const log = options.logger ?? silentLogger;
  const windows = new Map<string, Window>();

  const line = (source: string, w: Window, count: number): AuditEvent => ({
    action: 'auth.failure',
    actor: w.first.actor,
    resourceType: w.first.resourceType,
    resourceId: w.first.resourceId,
    outcome: 'failure',
    sourceIp: source,
    details: {
      reason: w.first.reason,
      count,
      firstAt: new Date(w.firstAt).toISOString(),
      lastAt: new Date(w.lastAt).toISOString(),
      refused: w.refused,
      reasons: [...w.reasons].map(([r, n]) => `${r}=${n}`).join(','),
    },
  });

  const write = (event: AuditEvent): Promise<void> =>
    options.audit.record(event).catch((err: unknown) => log.error({ code: (err as { code?: string }).code }, 'auth failure not audited'));

  async function flush(all: boolean): Promise<void> {
    const t = now();
    const writes: Promise<void>[] = [];
    for (const [source, w] of windows) {
      if (!all && t - w.start < options.windowMs) continue;
      windows.delete(source);
      if (w.pending > 0) writes.push(write(line(source, w, w.pending)));
    }
    await Promise.all(writes);
  }

  const timer = setInterval(() => void flush(false), Math.max(1_000, Math.min(options.windowMs, 60_000)));
  timer.unref();

  function current(source: string): { key: string; w: Window | undefined } {
    const w = windows.get(source);
    if (w && now() - w.start >= options.windowMs) {
      windows.delete(source);
      if (w.pending > 0) void write(line(source, w, w.pending));
      return { key: source, w: undefined };
    }
    if (w || windows.size < maxSources) return { key: source, w };
    return { key: OVERFLOW_SOURCE, w: windows.get(OVERFLOW_SOURCE) };
  }

  return {
    refuse(source) {
      const { key, w } = current(source);
      if (!w || key === OVERFLOW_SOURCE || w.total < options.limit) return 0;
      const t = now();
      w.total += 1;
      w.pending += 1;
      w.refused += 1;
      w.lastAt = t;
      return Math.max(1, Math.ceil((w.start + options.windowMs - t) / 1000));
    },
    async fail(source, failure) {
      const { key, w } = current(source);
      const t = now();
      if (w) {
        w.total += 1;
        w.pending += 1;
        w.lastAt = t;
        w.reasons.set(failure.reason, (w.reasons.get(failure.reason) ?? 0) + 1);
        return;
      }
      const fresh: Window = { start: t, first: failure, pending: 0, total: 1, refused: 0, firstAt: t, lastAt: t, reasons: new Map() };
      windows.set(key, fresh);
      if (key === OVERFLOW_SOURCE) {
        // Too many sources to track each: counted together, audited at the window's end.
        fresh.pending = 1;
        fresh.reasons.set(failure.reason, 1);
        return;
      }
      await write({ ...line(key, fresh, 1), details: { reason: failure.reason, count: 1, firstAt: new Date(t).toISOString(), lastAt: new Date(t).toISOString() } });
    },
    get size() {
      return windows.size;
    },
    async close() {
      clearInterval(timer);
      await flush(true);
    },
  };
}
