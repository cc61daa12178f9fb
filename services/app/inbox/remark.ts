import type { Logger } from 'pino';
import { STATE_ERRORS } from '../../core/state/errors.ts';

/** Acknowledged ids whose `applied` mark failed, marked again in the background until it lands. */
export interface MarkRetry {
  /** Marks `envelopeId` again later (no-op when it is already waiting). */
  add(envelopeId: string): void;
  /** Ids waiting for their mark now. */
  readonly size: number;
  /** Stops retrying (shutdown): the ids still waiting are logged, nothing more is written. */
  stop(): void;
}

/** Options for {@link createMarkRetry}. */
export interface MarkRetryOptions {
  /** Writes the mark (the apply ledger's `applied`). */
  mark: (envelopeId: string) => Promise<void>;
  /** Service logger: a mark that lands late (info), an id given up at the bound or at shutdown (warn). */
  logger: Logger;
  /** The first retry's delay, ms; each next one doubles, up to `maxDelayMs`. */
  firstDelayMs?: number;
  /** The longest delay between two tries of one id, ms. */
  maxDelayMs?: number;
  /** The most ids waiting at once; past it the oldest is given up (logged). */
  maxPending?: number;
}

interface Waiting {
  /** Tries made since the first failed one. */
  tries: number;
  dueAt: number;
  /** A try is in flight (a slow store): the timer does not start a second one. */
  busy: boolean;
}

const GIVEN_UP = STATE_ERRORS.CR_INBOX_MARK_GIVEN_UP.code;

export const MARK_RETRY_FIRST_DELAY_MS = 1000;
export const MARK_RETRY_MAX_DELAY_MS = 60_000;
export const MARK_RETRY_MAX_PENDING = 10_000;

/**
 * Retries the `applied` marks of acknowledged records that could not be written at the ack (the
 * state table failed; the queue message is deleted all the same, so nothing brings the record
 * back). Until the mark lands, no instance knows the record was acknowledged: an ack repeated
 * elsewhere would be answered 404. Each id is tried again after `firstDelayMs`, then at doubling
 * delays up to `maxDelayMs`, while the process runs; ids due together are tried in the same turn,
 * so their marks share writes. One timer (unref'd) for all of them.
 */
export function createMarkRetry(options: MarkRetryOptions): MarkRetry {
  const first = options.firstDelayMs ?? MARK_RETRY_FIRST_DELAY_MS;
  const max = options.maxDelayMs ?? MARK_RETRY_MAX_DELAY_MS;
  const bound = options.maxPending ?? MARK_RETRY_MAX_PENDING;
  const waiting = new Map<string, Waiting>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const arm = (): void => {
    if (stopped || timer !== undefined || waiting.size === 0) return;
    let soonest = Infinity;
    // An id being tried is armed again by its own run once the try settles.
    for (const w of waiting.values()) if (!w.busy) soonest = Math.min(soonest, w.dueAt);
    if (soonest === Infinity) return;
    timer = setTimeout(run, Math.max(0, soonest - Date.now()));
    timer.unref();
  };

  const tryOne = async (id: string, w: Waiting): Promise<void> => {
    w.tries++;
    w.busy = true;
    try {
      await options.mark(id);
      waiting.delete(id);
      options.logger.info({ envelopeId: id, tries: w.tries + 1 }, 'marked the acknowledged envelope applied on a later try');
    } catch {
      w.dueAt = Date.now() + Math.min(max, first * 2 ** w.tries);
    } finally {
      w.busy = false;
    }
  };

  function run(): void {
    timer = undefined;
    if (stopped) return;
    const now = Date.now();
    const due = [...waiting].filter(([, w]) => !w.busy && w.dueAt <= now);
    // Every try of this turn settles (a mark or a new due time) before the timer is armed again.
    void Promise.all(due.map(([id, w]) => tryOne(id, w))).then(arm);
  }

  return {
    add(id) {
      if (stopped || waiting.has(id)) return;
      if (waiting.size >= bound) {
        const [oldest] = waiting.keys();
        waiting.delete(oldest!);
        options.logger.warn({ envelopeId: oldest, code: GIVEN_UP }, 'gave up marking an acknowledged envelope applied: too many marks waiting');
      }
      waiting.set(id, { tries: 0, dueAt: Date.now() + first, busy: false });
      if (timer === undefined) arm();
    },
    get size() {
      return waiting.size;
    },
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      for (const id of waiting.keys()) options.logger.warn({ envelopeId: id, code: GIVEN_UP }, 'stopped before an acknowledged envelope could be marked applied');
      waiting.clear();
    },
  };
}
