/** Order of message statuses: a callback never moves a message back down. */
export const STATUS_RANK: Readonly<Record<string, number>> = {
  accepted: 0, scheduled: 0, queued: 1, sending: 2, sent: 3,
  delivered: 4, undelivered: 4, failed: 4, received: 4, read: 4, canceled: 4,
};

/** Statuses after which a message will not change again. */
export const FINAL_STATUSES: ReadonlySet<string> = new Set(['delivered', 'undelivered', 'failed', 'received', 'read', 'canceled']);

/** What the map remembers of one message. */
export interface StatusEntry {
  /** Highest status seen. */
  status: string;
  /** Whether a redaction job was enqueued for that status. */
  enqueued: boolean;
}

/** A bounded map sid → highest status seen, oldest entries evicted first (per process; the worker stays idempotent). */
export class StatusMap {
  private readonly map = new Map<string, StatusEntry>();
  private readonly capacity: number;

  constructor(capacity = 10_000) {
    this.capacity = capacity;
  }

  /** The entry for a sid. */
  get(sid: string): StatusEntry | undefined {
    return this.map.get(sid);
  }

  /** Entries held. */
  get size(): number {
    return this.map.size;
  }

  /**
   * Records `status` if it is not lower than what was seen; returns whether it advanced the
   * message (a repeat of the same status does not).
   */
  advance(sid: string, status: string): boolean {
    const rank = STATUS_RANK[status] ?? -1;
    const current = this.map.get(sid);
    if (current && (STATUS_RANK[current.status] ?? -1) >= rank) return false;
    this.map.delete(sid);
    this.map.set(sid, { status, enqueued: false });
    while (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value!);
    return true;
  }

  /** Marks the current status's job as enqueued. */
  markEnqueued(sid: string): void {
    const e = this.map.get(sid);
    if (e) e.enqueued = true;
  }
}
