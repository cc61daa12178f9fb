import type { Logger } from 'pino';
import { nullAudit, type AuditSink } from '../../core/audit/types.ts';
import { hashId, silentLogger } from '../../core/log/logger.ts';
import { withRetry, type RetryOptions, type SignalWireApi } from './client.ts';
import { isInProgress, redactMessage, snapshotOf } from './redact.ts';
import type { RedactionMode } from './types.ts';

/** The actor of every audit line a sweep writes. */
export const SWEEP_ACTOR = 'cli:sms-sweep';

/** Counts of a sweep. */
export interface SweepCounts {
  /** Messages listed. */
  scanned: number;
  /** Messages redacted (or, in a dry run, that would be). */
  redacted: number;
  /** Media items deleted (or that would be). */
  mediaDeleted: number;
  /** Terminal messages already without body and media. */
  alreadyClean: number;
  /** Messages still in progress or within the `sent` grace period. */
  skippedInProgress: number;
  /** Messages whose redaction failed (left for a later sweep). */
  failed: number;
}

/** Where a sweep is: saved after each page so an interrupted sweep resumes. */
export interface SweepState {
  /** Format version. */
  v: 1;
  /** Absolute URL of the next page to read; absent before the first page. */
  nextPageUrl?: string;
  /** Sid of the last message handled. */
  lastSid?: string;
  /** Pages done. */
  pages: number;
  /** Counts so far. */
  counts: SweepCounts;
  /** True once the last page was handled. */
  done: boolean;
}

/** Options of {@link runSweep}. */
export interface SweepOptions {
  /** Only messages sent on or after. */
  since?: Date;
  /** Only messages sent on or before. */
  until?: Date;
  /** Change nothing; count what would be done. */
  dryRun?: boolean;
  /** Blank only, or blank and delete. */
  mode: RedactionMode;
  /** A `sent` message counts as final this long after sending. */
  sentGraceSeconds: number;
  /** Messages per page (default 100). */
  pageSize?: number;
  /** Messages redacted in parallel within a page (default 4). */
  concurrency?: number;
  /** State of an interrupted sweep to resume from. */
  resume?: SweepState;
  /** Called after each page with the state to save. */
  onPage?: (state: SweepState) => void | Promise<void>;
  /** Stops after the current page when aborted. */
  signal?: AbortSignal;
}

/** Dependencies of {@link runSweep}. */
export interface SweepDeps {
  /** SDK client. */
  api: SignalWireApi;
  /** Audit trail (sweep redactions are audited like the worker's). */
  audit?: AuditSink;
  /** Key hashing sids for logs and audit. */
  hmacKey: string;
  /** Logger (never given bodies or numbers). */
  logger?: Logger;
  /** Retry policy of each call. */
  retry?: RetryOptions;
  /** Clock. */
  now?: () => Date;
}

/** A fresh sweep state. */
export function newSweepState(): SweepState {
  return { v: 1, pages: 0, done: false, counts: { scanned: 0, redacted: 0, mediaDeleted: 0, alreadyClean: 0, skippedInProgress: 0, failed: 0 } };
}

interface SdkMessage { sid: string; status: string; body: string | null; numMedia?: string; dateSent?: Date | null; dateCreated?: Date | null }
interface SdkPage { instances: SdkMessage[]; nextPageUrl?: string }

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) await fn(items[i++]!);
  });
  await Promise.all(workers);
}

/**
 * Walks every message in the date range page by page and redacts each terminal one that still has
 * a body or media (media first, confirmed, then the body, then the message in delete mode).
 */
export async function runSweep(deps: SweepDeps, opts: SweepOptions): Promise<SweepState> {
  const log = deps.logger ?? silentLogger;
  const audit = deps.audit ?? nullAudit;
  const now = deps.now ?? (() => new Date());
  const retry = { ...deps.retry, logger: log, ...(opts.signal ? { signal: opts.signal } : {}) };
  const state: SweepState = opts.resume ? structuredClone(opts.resume) : newSweepState();
  if (state.done) return state;
  const redactDeps = { api: deps.api, mode: opts.mode, sentGraceSeconds: opts.sentGraceSeconds, now, retry, dryRun: opts.dryRun ?? false };

  let page: SdkPage;
  if (state.nextPageUrl) {
    const url = state.nextPageUrl;
    page = (await withRetry('messages.page', () => deps.api.messages.getPage(url), retry)) as unknown as SdkPage;
  } else {
    const filter = { pageSize: opts.pageSize ?? 100, ...(opts.since ? { dateSentAfter: opts.since } : {}), ...(opts.until ? { dateSentBefore: opts.until } : {}) };
    page = (await withRetry('messages.page', () => deps.api.messages.page(filter), retry)) as unknown as SdkPage;
  }
  for (;;) {
    await mapLimit(page.instances, opts.concurrency ?? 4, async (m) => {
      state.counts.scanned++;
      const snap = snapshotOf(m);
      if (isInProgress(snap.status)) {
        state.counts.skippedInProgress++;
        return;
      }
      // num_media is the count at send; 0 means there never was media to look for.
      if (snap.body === '' && (m.numMedia ?? '0') === '0' && opts.mode === 'redact') {
        state.counts.alreadyClean++;
        return;
      }
      const sidHash = hashId(deps.hmacKey, snap.sid);
      try {
        const outcome = await redactMessage(redactDeps, snap.sid, snap);
        if (outcome.kind === 'in-progress' || outcome.kind === 'grace') state.counts.skippedInProgress++;
        else if (outcome.kind === 'already-redacted') state.counts.alreadyClean++;
        else {
          state.counts.redacted++;
          state.counts.mediaDeleted += outcome.mediaDeleted;
          if (!opts.dryRun) {
            await audit.record({
              action: 'sms.redacted', actor: SWEEP_ACTOR, resourceType: 'sms', resourceId: sidHash, outcome: 'success',
              details: { messageFound: outcome.kind === 'redacted', mediaDeleted: outcome.mediaDeleted, mode: opts.mode, trigger: 'sweep' },
            });
          }
        }
      } catch (err) {
        state.counts.failed++;
        log.warn({ sidHash, err: { message: (err as Error).message } }, 'sweep: redaction failed');
        await audit.record({ action: 'sms.redaction-failed', actor: SWEEP_ACTOR, resourceType: 'sms', resourceId: sidHash, outcome: 'failure', details: { reason: (err as Error).name, trigger: 'sweep' } });
      }
    });
    state.pages++;
    state.lastSid = page.instances.at(-1)?.sid ?? state.lastSid;
    const next = page.nextPageUrl;
    if (next) state.nextPageUrl = next;
    else {
      delete state.nextPageUrl;
      state.done = true;
    }
    await opts.onPage?.(structuredClone(state));
    if (state.done || opts.signal?.aborted) return state;
    page = (await withRetry('messages.page', () => deps.api.messages.getPage(next!), retry)) as unknown as SdkPage;
  }
}
