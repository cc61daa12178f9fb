import { createHash } from 'node:crypto';
import { RelayPathError } from './errors.ts';

/** Options for {@link IdempotencyCache}. */
export interface IdempotencyOptions {
  /** How long a key is remembered. */
  ttlMs?: number;
  /** Most keys remembered (oldest forgotten first). */
  maxEntries?: number;
  /** Clock, for tests. */
  now?: () => number;
}

interface Entry {
  fingerprint: string;
  result: Promise<string>;
  expires: number;
}

/**
 * Remembers `Idempotency-Key` → envelope id per caller, so a retried request answers
 * the same id without sending twice. A key reused with a different body is a 409.
 * In-process and bounded: a retry that reaches another instance is deduplicated
 * downstream by envelope id only if it carries the same id (documented in docs/configuration.md).
 */
export class IdempotencyCache {
  readonly #entries = new Map<string, Entry>();
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(options: IdempotencyOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 24 * 3600_000;
    this.#max = options.maxEntries ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Runs `create` once per (caller, key); concurrent and later calls with the same key
   * and body get the same id. A failed `create` is forgotten, so the caller may retry.
   */
  async run(caller: string, key: string | undefined, body: Buffer, contentType: string, create: () => Promise<string>): Promise<{ id: string; replayed: boolean }> {
    if (key === undefined) return { id: await create(), replayed: false };
    if (!/^[\x21-\x7e]{1,200}$/.test(key)) {
      throw new RelayPathError('CR_IDEMPOTENCY_KEY_INVALID', 'Idempotency-Key: expected 1 to 200 visible ASCII characters');
    }
    const slot = `${caller}\u0000${key}`;
    const fingerprint = createHash('sha256').update(contentType).update('\u0000').update(body).digest('hex');
    const now = this.#now();
    const existing = this.#entries.get(slot);
    if (existing && existing.expires > now) {
      if (existing.fingerprint !== fingerprint) {
        throw new RelayPathError('CR_IDEMPOTENCY_KEY_REUSED', 'Idempotency-Key was already used with a different request body');
      }
      return { id: await existing.result, replayed: true };
    }
    const result = create();
    this.#entries.set(slot, { fingerprint, result, expires: now + this.#ttlMs });
    this.#evict();
    try {
      return { id: await result, replayed: false };
    } catch (err) {
      if (this.#entries.get(slot)?.result === result) this.#entries.delete(slot);
      throw err;
    }
  }

  #evict(): void {
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }
}
