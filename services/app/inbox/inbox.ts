import type { Envelope } from '../../core/envelope/envelope.ts';
import { payloadOf } from '../../core/objects/pointer.ts';

/** What the inbox lists about a record: metadata only, never the payload. */
export interface InboxSummary {
  /** Envelope id (UUIDv7). */
  id: string;
  /** Envelope kind, e.g. `care.submission`. */
  kind: string;
  /** Submitting partner's id. */
  partner: string | undefined;
  /** Media type of the payload. */
  contentType: string;
  /** When the sender sealed it. */
  sentAt: string;
  /** When this instance received it. */
  receivedAt: string;
  /** Decoded payload size in bytes. */
  bytes: number;
}

/**
 * A held record: the decrypted envelope plus the promise that settles its SQS message. Its
 * summary is built when listed, not kept: with 10,000 records held every field counts.
 */
interface Held {
  envelope: Envelope;
  /** When this instance received it, epoch ms. */
  receivedAt: number;
  settle: (outcome: HoldOutcome) => void;
  outcome: Promise<HoldOutcome>;
  /** Set by `ack`: resolves with whether the acknowledgement is final (see {@link Inbox.settlement}). */
  settled?: (final: boolean) => void;
}

/**
 * How long an acknowledged id is remembered: far longer than a claim's round trip to the state
 * table (the race {@link Inbox.acknowledged} closes), short enough to stay small.
 */
export const ACKED_MEMORY_MS = 10 * 60_000;

/** How a hold ends: acknowledged by the application, or released back to SQS. */
export type HoldOutcome = 'acked' | 'released';

/**
 * The app's in-memory inbox. A record is held while its SQS message stays in flight
 * (the consumer's heartbeat); `ack` settles the hold so the consumer deletes the message.
 * Plaintext lives only here, in memory: a crash loses nothing, SQS redelivers.
 */
export class Inbox {
  readonly #records = new Map<string, Held>();
  /** Acknowledged records whose acknowledgement is not final yet (see {@link Inbox.settlement}). */
  readonly #settling = new Map<string, { held: Held; done: Promise<boolean> }>();
  /**
   * Ids acknowledged lately (ack time, epoch ms), oldest first: a copy of one whose claim was
   * taken before the ack marked it applied must not be shown again (see {@link Inbox.acknowledged}).
   */
  readonly #acked = new Map<string, number>();
  readonly #capacity: number;

  /** `capacity` is the most records held; the consumer's maxInFlight is set to the same bound. */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Records held now. */
  get size(): number {
    return this.#records.size;
  }

  /** The capacity bound. */
  get capacity(): number {
    return this.#capacity;
  }

  /**
   * Holds a record until it is acknowledged or `signal` aborts (shutdown). A second
   * delivery of the same envelope id joins the first hold: applied once, deleted together.
   */
  hold(envelope: Envelope, signal: AbortSignal, now: Date = new Date()): Promise<HoldOutcome> {
    const existing = this.#records.get(envelope.id);
    if (existing) return existing.outcome;
    if (signal.aborted) return Promise.resolve('released');
    let settle!: (outcome: HoldOutcome) => void;
    const outcome = new Promise<HoldOutcome>((resolve) => {
      settle = resolve;
    });
    const held: Held = { envelope, receivedAt: now.getTime(), settle, outcome };
    this.#records.set(envelope.id, held);
    signal.addEventListener(
      'abort',
      () => {
        if (this.#records.get(envelope.id) === held) this.#records.delete(envelope.id);
        settle('released');
        // Given up (shutdown) between the ack and its settlement: the message was released, not deleted.
        this.deleted(envelope.id, false);
      },
      { once: true },
    );
    return outcome;
  }

  /** Metadata of held records, oldest first, at most `limit`. */
  list(limit = 100, after?: string): InboxSummary[] {
    const all = [...this.#records.values()];
    const start = after === undefined ? 0 : all.findIndex((h) => h.envelope.id === after) + 1;
    return all.slice(start, start + limit).map((h) => summarize(h.envelope, h.receivedAt));
  }

  /** The full envelope of a held record, or undefined. */
  get(id: string): Envelope | undefined {
    return this.#records.get(id)?.envelope;
  }

  /**
   * Acknowledges a record: removes it and lets its SQS message be deleted. False if not held.
   * {@link Inbox.settlement} then says whether the acknowledgement is final.
   */
  ack(id: string, now: Date = new Date()): boolean {
    const held = this.#records.get(id);
    if (!held) return false;
    this.#records.delete(id);
    this.#remember(id, now.getTime());
    const done = new Promise<boolean>((resolve) => (held.settled = resolve));
    this.#settling.set(id, { held, done });
    held.settle('acked');
    return true;
  }

  /**
   * Whether `id` was acknowledged here lately (within {@link ACKED_MEMORY_MS}, at most `capacity`
   * ids). A redelivered copy can be claimed by this same process (its own hold) just before the
   * application's ack marks the id applied, and reach the inbox just after the record left it:
   * it is the acknowledged record again, never a second one.
   */
  acknowledged(id: string, now: Date = new Date()): boolean {
    const at = this.#acked.get(id);
    return at !== undefined && now.getTime() - at <= ACKED_MEMORY_MS;
  }

  #remember(id: string, at: number): void {
    this.#acked.delete(id);
    this.#acked.set(id, at);
    for (const [old, when] of this.#acked) {
      if (this.#acked.size <= this.#capacity && at - when <= ACKED_MEMORY_MS) break;
      this.#acked.delete(old);
    }
  }

  /**
   * After `ack`: resolves true once the acknowledgement is final, whichever comes first: the id is
   * marked applied in the state table shared by every app instance ({@link Inbox.applied}: a copy
   * SQS delivers again is then a duplicate, never shown again), or the record's queue message is
   * deleted. False when neither happened: the mark failed and so did the delete, or the hold was
   * given up at shutdown (SQS may deliver the record again). Undefined when no ack is pending.
   */
  settlement(id: string): Promise<boolean> | undefined {
    return this.#settling.get(id)?.done;
  }

  /** Called once the acknowledged id is marked applied in the shared state table: the acknowledgement is final. */
  applied(id: string): void {
    this.#settle(id, true);
  }

  /** Called by the consumer side once the acknowledged record's queue message was (or was not) deleted. */
  deleted(id: string, deleted: boolean): void {
    this.#settle(id, deleted);
  }

  #settle(id: string, final: boolean): void {
    const pending = this.#settling.get(id);
    if (!pending) return;
    this.#settling.delete(id);
    pending.held.settled?.(final);
  }
}

function summarize(envelope: Envelope, receivedAt: number): InboxSummary {
  // A large record holds only its pointer: the payload's type and size are the pointer's.
  const { contentType, bytes } = payloadOf(envelope);
  return {
    id: envelope.id,
    kind: envelope.kind,
    partner: envelope.partner,
    contentType,
    sentAt: envelope.sentAt,
    receivedAt: new Date(receivedAt).toISOString(),
    bytes,
  };
}
