import type { AlertName, AlertSeverity } from './catalogue.ts';
import type { AlertFinding, Evaluation } from './evaluate.ts';

/** What a notification says about a condition. */
export type AlertState = 'started' | 'reminder' | 'cleared';

/** One notification: a state change of one condition for one subject, or a reminder. */
export interface AlertNotification {
  /** The condition. */
  condition: AlertName;
  /** A queue, a key fingerprint, `emr`, `inbox`, `audit` or `service`. */
  subject: string;
  /** Severity. */
  severity: AlertSeverity;
  /** Started, still holding (reminder), or cleared. */
  state: AlertState;
  /** When the condition started, ISO 8601. */
  since: string;
  /** When this notification was decided, ISO 8601. */
  at: string;
  /** Counts and codes at this moment (at `cleared`: the last ones seen while it held). */
  facts: Record<string, string | number>;
}

/** Options for {@link FloodControl}. */
export interface FloodControlOptions {
  /** A reminder while a condition holds, every this many ms; 0 = never. */
  reminderMs: number;
  /** A condition clears only after not holding for this long (ms): a flapping destination is one alert. */
  clearAfterMs: number;
}

interface Tracked {
  finding: AlertFinding;
  since: number;
  lastSentAt: number;
  quietSince: number | undefined;
}

/**
 * Turns a stream of evaluations into few notifications: one when a condition starts,
 * one when it has cleared (after `clearAfterMs` without holding), and a reminder at an
 * interval while it holds; never one per message. Subjects are bounded (queues, keys),
 * so its memory is too.
 */
export class FloodControl {
  readonly #tracked = new Map<string, Tracked>();
  readonly #options: FloodControlOptions;

  constructor(options: FloodControlOptions) {
    if (!(options.reminderMs >= 0) || !(options.clearAfterMs >= 0)) {
      throw new RangeError('FloodControl: reminderMs and clearAfterMs must be numbers ≥ 0');
    }
    this.#options = options;
  }

  /** The conditions currently considered on (started and not yet cleared). */
  get active(): AlertFinding[] {
    return [...this.#tracked.values()].map((t) => t.finding);
  }

  /** Applies one evaluation taken at `now` (epoch ms); returns the notifications to send, in order. */
  update(evaluation: Evaluation, now: number): AlertNotification[] {
    const out: AlertNotification[] = [];
    const seen = new Set<string>();
    for (const f of evaluation.active) {
      const key = `${f.condition}\u0000${f.subject}`;
      seen.add(key);
      const t = this.#tracked.get(key);
      if (!t) {
        this.#tracked.set(key, { finding: f, since: now, lastSentAt: now, quietSince: undefined });
        out.push(this.#notify(f, 'started', now, now));
        continue;
      }
      t.finding = f;
      t.quietSince = undefined;
      if (this.#options.reminderMs > 0 && now - t.lastSentAt >= this.#options.reminderMs) {
        t.lastSentAt = now;
        out.push(this.#notify(f, 'reminder', t.since, now));
      }
    }
    for (const [key, t] of this.#tracked) {
      if (seen.has(key) || !evaluation.evaluated.has(t.finding.condition)) continue;
      t.quietSince ??= now;
      if (now - t.quietSince >= this.#options.clearAfterMs) {
        this.#tracked.delete(key);
        out.push(this.#notify(t.finding, 'cleared', t.since, now));
      }
    }
    return out;
  }

  #notify(f: AlertFinding, state: AlertState, since: number, now: number): AlertNotification {
    return {
      condition: f.condition,
      subject: f.subject,
      severity: f.severity,
      state,
      since: new Date(since).toISOString(),
      at: new Date(now).toISOString(),
      facts: { ...f.facts },
    };
  }
}
