import { createHash } from 'node:crypto';
import { uuidv7 } from '../envelope/uuidv7.ts';
import { ttlAfter, type StateTable } from '../state/table.ts';
import { RelayPathError } from './errors.ts';

/** Options for {@link createIdempotency}. */
export interface IdempotencyOptions {
  /** The interface's state table: claims are shared by every instance. */
  table: StateTable;
  /** How long a key is remembered, seconds (the queue retention). */
  ttlSeconds: number;
  /**
   * Whether the envelope a claim decided is on its way: its status record (`accepted`, `queued`, …) has
   * reached `queued`. The send that `create` makes records that status before it resolves, so a claim
   * whose send succeeded needs no write of its own: a later request with the same key asks this.
   */
  sent: (envelopeId: string) => Promise<boolean>;
  /** How long a claim whose send has not finished blocks others, ms (default 10 s); then a retry takes it over. */
  leaseMs?: number;
  /** First wait of a request waiting on another instance's claim, ms (doubling up to 1 s). */
  pollMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** Sends the envelope `envelopeId` (decided when the key was claimed) and resolves with it. */
export type CreateEnvelope = (envelopeId: string) => Promise<string>;

/** Answers an `Idempotency-Key` once across the fleet. */
export interface Idempotency {
  /**
   * Runs `create` once per (caller, key) in effect: concurrent and later calls, on any
   * instance, before or after a restart, with the same body get the same id; a different
   * body is a 409. Without a key, `create` runs with a fresh id. `created` says whether this
   * call ran `create` (a first request, or one that took over a claim whose sender stopped);
   * when it did not, the id was answered from an earlier request's claim, and that request's
   * audit lines may be missing (it stopped after SQS took the envelope): the caller writes them
   * again, marked `copy` (`Outbound.recordCopy`).
   */
  run(caller: string, key: string | undefined, body: Buffer, contentType: string, create: CreateEnvelope): Promise<IdempotentAnswer>;
}

/** What {@link Idempotency.run} answered. */
export interface IdempotentAnswer {
  /** The envelope id of the key. */
  id: string;
  /** An earlier request with the same key decided the id. */
  replayed: boolean;
  /** This call ran `create` (sent the envelope). */
  created: boolean;
}

/**
 * `Idempotency-Key` → envelope id and body digest, in the state table. A claim is a
 * conditional put of a `pending` item holding the envelope id decided now; the send
 * follows. The claim is settled by the envelope's own status (`sent`), which the send
 * records: a later request with the same key answers the same id once that status reached
 * `queued`, waits while the claim's lease runs, and after it takes the claim over and
 * sends the same envelope id, which the receiver applies once (a claimer that crashed, or
 * whose `queued` status could not be written). A send that failed gives the lease up at once.
 * A claim marked `queued` on its own item (written so by earlier versions) is settled too.
 */
export function createIdempotency(options: IdempotencyOptions): Idempotency {
  const { table } = options;
  const leaseMs = options.leaseMs ?? 10_000;
  const pollMs = options.pollMs ?? 100;
  const now = options.now ?? Date.now;
  const reused = (): RelayPathError => new RelayPathError('CR_IDEMPOTENCY_KEY_REUSED', 'Idempotency-Key was already used with a different request body');

  async function send(pk: string, envelopeId: string, lease: number, create: CreateEnvelope): Promise<string> {
    try {
      // Resolves once the envelope is on its way and its status says so: that settles the claim.
      await create(envelopeId);
    } catch (err) {
      await table.update(pk, { update: 'SET leaseUntil = :zero', condition: 'lease = :lease', values: { ':zero': 0, ':lease': lease } }).catch(() => undefined);
      throw err;
    }
    return envelopeId;
  }

  return {
    async run(caller, key, body, contentType, create) {
      if (key === undefined) return { id: await create(uuidv7()), replayed: false, created: true };
      if (!/^[\x21-\x7e]{1,200}$/.test(key)) {
        throw new RelayPathError('CR_IDEMPOTENCY_KEY_INVALID', 'Idempotency-Key: expected 1 to 200 visible ASCII characters');
      }
      const pk = `idem#${caller}#${key}`;
      const digest = createHash('sha256').update(contentType).update('\u0000').update(body).digest('hex');
      for (let waited = 0; ; ) {
        const t = now();
        const envelopeId = uuidv7(t);
        const lease = t + leaseMs;
        const claimed = await table.put(
          { pk, state: 'pending', envelopeId, digest, lease, leaseUntil: lease, ttl: ttlAfter(options.ttlSeconds, t) },
          // An item past its TTL that DynamoDB has not deleted yet counts as absent.
          { condition: 'attribute_not_exists(pk) OR #ttl < :nowSec', names: { '#ttl': 'ttl' }, values: { ':nowSec': Math.floor(t / 1000) } },
        );
        if (claimed) return { id: await send(pk, envelopeId, lease, create), replayed: false, created: true };
        const item = await table.get(pk);
        if (!item) continue;
        if (item.digest !== digest) throw reused();
        const id = String(item.envelopeId);
        if (item.state === 'queued' || (await options.sent(id))) return { id, replayed: true, created: false };
        if (Number(item.leaseUntil) > t) {
          // Another request (maybe on another instance) is sending it: wait for its outcome.
          await new Promise((resolve) => setTimeout(resolve, Math.min(1000, pollMs * 2 ** waited++)));
          continue;
        }
        const takeover = t + leaseMs;
        const taken = await table.update(pk, {
          update: 'SET lease = :lease, leaseUntil = :lease',
          condition: '#s = :pending AND lease = :old',
          names: { '#s': 'state' },
          values: { ':lease': takeover, ':pending': 'pending', ':old': item.lease },
        });
        if (taken) return { id: await send(pk, id, takeover, create), replayed: true, created: true };
      }
    },
  };
}
