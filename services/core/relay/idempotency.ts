import { createHash } from 'node:crypto';
import { uuidv7 } from '../envelope/uuidv7.ts';
import { httpErrors } from '../http/errors.ts';
import { keepLease } from '../state/leaseKeeper.ts';
import { ttlAfter, type StateTable } from '../state/table.ts';
import { RelayPathError } from './errors.ts';

/** What a streamed body's claim is matched on before its own digest is known (with the media type). */
const STREAMED_BODY = 'large-object';

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
  /**
   * As {@link run}, for a body known only once it has streamed through (a large document). The
   * claim's lease is renewed while `create` runs (an upload may outlast it); `create` records the
   * body's size and SHA-256 with the claim before it relays (`settle`). A later request with the
   * same key waits while the claim's sender is alive, then reads its own body through (`body.digest`)
   * and answers the same id when it matches, 409 when it differs; or takes the claim over.
   * ({@link createIdempotency} has it; a test double that takes no streamed body need not.)
   */
  runStreamed?(caller: string, key: string | undefined, contentType: string, body: ComparedBody, create: CreateStreamed): Promise<IdempotentAnswer>;
}

/** A streamed body's size and lower-case hex SHA-256. */
export interface BodyDigest {
  /** Bytes. */
  bytes: number;
  /** SHA-256, lower-case hex. */
  sha256: string;
}

/** The body of a request that did not claim its key: compared with the claim's, never relayed. */
export interface ComparedBody {
  /** Content-Length, when declared: a length other than the claim's is a 409 without reading. */
  declaredBytes?: number | undefined;
  /** Reads the body through (discarding it) and resolves with its digest. */
  digest(): Promise<BodyDigest>;
}

/** What a streamed send is given besides its envelope id. */
export interface StreamedAttempt {
  /** This call took over a claim whose sender stopped: that sender may have stored an object for the same envelope id. */
  takeover: boolean;
  /** Aborted when another request took the claim over (the lease could not be renewed in time): relay nothing. */
  lost: AbortSignal;
  /** Records the body's digest with the claim, before the envelope is relayed; throws 409 when the claim already holds another body's. */
  settle(digest: BodyDigest): Promise<void>;
}

/** Sends the envelope `envelopeId` of a streamed body and resolves with it. */
export type CreateStreamed = (envelopeId: string, attempt: StreamedAttempt) => Promise<string>;

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
export function createIdempotency(options: IdempotencyOptions): Idempotency & Required<Pick<Idempotency, 'runStreamed'>> {
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

  const checkKey = (key: string): void => {
    if (!/^[\x21-\x7e]{1,200}$/.test(key)) {
      throw new RelayPathError('CR_IDEMPOTENCY_KEY_INVALID', 'Idempotency-Key: expected 1 to 200 visible ASCII characters');
    }
  };
  const digestOf = (contentType: string, body: Buffer): string => createHash('sha256').update(contentType).update('\u0000').update(body).digest('hex');
  const wait = (waited: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.min(1000, pollMs * 2 ** waited)));
  const claimItem = (pk: string, digest: string, envelopeId: string, t: number) => {
    const lease = t + leaseMs;
    return { pk, state: 'pending', envelopeId, digest, lease, leaseUntil: lease, ttl: ttlAfter(options.ttlSeconds, t) };
  };
  // An item past its TTL that DynamoDB has not deleted yet counts as absent.
  const absent = (t: number) => ({ condition: 'attribute_not_exists(pk) OR #ttl < :nowSec', names: { '#ttl': 'ttl' }, values: { ':nowSec': Math.floor(t / 1000) } });
  const takeOver = async (pk: string, old: unknown, t: number): Promise<number | undefined> => {
    const takeover = t + leaseMs;
    const taken = await table.update(pk, {
      update: 'SET lease = :lease, leaseUntil = :lease',
      condition: '#s = :pending AND lease = :old',
      names: { '#s': 'state' },
      values: { ':lease': takeover, ':pending': 'pending', ':old': old },
    });
    return taken ? takeover : undefined;
  };

  /** A streamed send under its claim: the lease renewed while it runs, the body's digest recorded (or compared) before it relays. */
  async function sendStreamed(pk: string, envelopeId: string, lease: number, takeover: boolean, create: CreateStreamed): Promise<string> {
    const kept = keepLease({
      renew: async () =>
        (await table.update(pk, { update: 'SET leaseUntil = :until', condition: 'lease = :lease', values: { ':until': now() + leaseMs, ':lease': lease } })) !== undefined,
      everyMs: Math.max(1, Math.floor(leaseMs / 3)),
    });
    const settle = async (seen: BodyDigest): Promise<void> => {
      const recorded = await table.update(pk, {
        update: 'SET bodySha256 = :sha, bodyBytes = :bytes',
        condition: 'lease = :lease AND (attribute_not_exists(bodySha256) OR (bodySha256 = :sha AND bodyBytes = :bytes))',
        values: { ':sha': seen.sha256, ':bytes': seen.bytes, ':lease': lease },
      });
      if (recorded) return;
      const item = await table.get(pk);
      if (item && Number(item.lease) === lease) throw reused();
      throw httpErrors.unavailable(1, 'Another request with this Idempotency-Key took over while this one was uploading; retry to learn its outcome.');
    };
    try {
      return await send(pk, envelopeId, lease, (id) => create(id, { takeover, lost: kept.lost, settle }));
    } finally {
      await kept.stop();
    }
  }

  return {
    async run(caller, key, body, contentType, create) {
      if (key === undefined) return { id: await create(uuidv7()), replayed: false, created: true };
      checkKey(key);
      const pk = `idem#${caller}#${key}`;
      const digest = digestOf(contentType, body);
      for (let waited = 0; ; ) {
        const t = now();
        const claim = claimItem(pk, digest, uuidv7(t), t);
        if (await table.put(claim, absent(t))) return { id: await send(pk, claim.envelopeId, claim.lease, create), replayed: false, created: true };
        const item = await table.get(pk);
        if (!item) continue;
        if (item.digest !== digest) throw reused();
        const id = String(item.envelopeId);
        if (item.state === 'queued' || (await options.sent(id))) return { id, replayed: true, created: false };
        if (Number(item.leaseUntil) > t) {
          // Another request (maybe on another instance) is sending it: wait for its outcome.
          await wait(waited++);
          continue;
        }
        const taken = await takeOver(pk, item.lease, t);
        if (taken !== undefined) return { id: await send(pk, id, taken, create), replayed: true, created: true };
      }
    },
    async runStreamed(caller, key, contentType, body, create) {
      if (key === undefined) {
        const settle = async (): Promise<void> => undefined;
        return { id: await create(uuidv7(), { takeover: false, lost: new AbortController().signal, settle }), replayed: false, created: true };
      }
      checkKey(key);
      const pk = `idem#${caller}#${key}`;
      // Claimed on the media type alone; the body's own digest is recorded with the claim once it has streamed through.
      const digest = digestOf(contentType, Buffer.from(STREAMED_BODY));
      for (let waited = 0; ; ) {
        const t = now();
        const claim = claimItem(pk, digest, uuidv7(t), t);
        if (await table.put(claim, absent(t))) return { id: await sendStreamed(pk, claim.envelopeId, claim.lease, false, create), replayed: false, created: true };
        const item = await table.get(pk);
        if (!item) continue;
        if (item.digest !== digest) throw reused();
        if (item.bodyBytes !== undefined && body.declaredBytes !== undefined && Number(item.bodyBytes) !== body.declaredBytes) throw reused();
        const id = String(item.envelopeId);
        if (item.state === 'queued' || (await options.sent(id))) {
          // Relayed: this body is read through only to compare it. A claim without a recorded digest cannot vouch for it.
          const mine = await body.digest();
          if (item.bodySha256 !== mine.sha256 || Number(item.bodyBytes) !== mine.bytes) throw reused();
          return { id, replayed: true, created: false };
        }
        if (Number(item.leaseUntil) > t) {
          // Its sender is alive (it renews the lease while it uploads): wait for its outcome.
          await wait(waited++);
          continue;
        }
        // Its sender stopped: send this body under the same id (compared with the claim's digest, if one was recorded, before relaying).
        const taken = await takeOver(pk, item.lease, t);
        if (taken !== undefined) return { id: await sendStreamed(pk, id, taken, true, create), replayed: true, created: true };
      }
    },
  };
}
