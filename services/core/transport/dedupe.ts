/** Options for {@link createDedupeSet}. */
export interface DedupeSetOptions {
  /** Most ids remembered; the least recently seen go first; default 100000. */
  maxEntries?: number;
  /** How long an id is remembered, ms; default 4 days (the main queues' retention). */
  ttlMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** Envelope ids whose effect is done: bounded by size (LRU) and age (TTL), in memory only. */
export interface DedupeSet {
  /** True when `id` was completed and has not expired. */
  has(id: string): boolean;
  /** Records `id` as completed. */
  add(id: string): void;
  /** Forgets `id`. */
  delete(id: string): void;
  /** Ids currently remembered (expired ones may count until touched). */
  readonly size: number;
}

/**
 * Creates a set of completed envelope ids, for a consumer's own duplicate recognition by
 * the clear attribute. It is per process and trusts an unverified attribute: the services
 * do not use it; they recognise duplicates after opening, by the signed id, in their state
 * table (core/state).
 */
export function createDedupeSet(options: DedupeSetOptions = {}): DedupeSet {
  const maxEntries = Math.max(1, options.maxEntries ?? 100_000);
  const ttlMs = options.ttlMs ?? 4 * 86_400_000;
  const now = options.now ?? Date.now;
  // A Map iterates in insertion order: re-inserting on touch makes the first key the least recent.
  const seen = new Map<string, number>();
  return {
    has(id) {
      const at = seen.get(id);
      if (at === undefined) return false;
      if (now() - at > ttlMs) {
        seen.delete(id);
        return false;
      }
      seen.delete(id);
      seen.set(id, at);
      return true;
    },
    add(id) {
      seen.delete(id);
      seen.set(id, now());
      while (seen.size > maxEntries) {
        const oldest = seen.keys().next().value;
        if (oldest === undefined) break;
        seen.delete(oldest);
      }
    },
    delete(id) {
      seen.delete(id);
    },
    get size() {
      return seen.size;
    },
  };
}
