import type { HolderLiveness } from './liveness.ts';
import { createPutBatcher } from './putBatcher.ts';
import { ttlAfter, type StateTable } from './table.ts';

/** What a claim on an envelope id found (`leftMs`: how long the other holder's lease still runs). */
export type ApplyClaim = { status: 'claimed' } | { status: 'held-elsewhere'; leftMs: number } | { status: 'applied' };

/** Envelope ids applied once across the app fleet: held (with a lease) while in an inbox, then applied. */
export interface ApplyLedger {
  /** Claims `envelopeId` for this process: `held-elsewhere` when another holder's lease runs, `applied` when it is done. */
  claim(envelopeId: string): Promise<ApplyClaim>;
  /**
   * Marks it applied (before the queue message is deleted, so a lost delete is a duplicate, never a
   * second record): resolves once the store has the mark. Marks made together share one write.
   */
  applied(envelopeId: string): Promise<void>;
  /** Gives up this process's hold (shutdown, release), so a redelivery is taken at once. */
  release(envelopeId: string): Promise<void>;
  /**
   * Whether `envelopeId` is marked applied (by any instance, within the marks' `ttlSeconds`): read
   * consistently, so a mark written just before by another instance counts.
   */
  isApplied(envelopeId: string): Promise<boolean>;
}

/** Options for {@link createApplyLedger}. */
export interface ApplyLedgerOptions {
  /** The app's state table. */
  table: StateTable;
  /** This process (holderId()). */
  holder: string;
  /** A hold's lease, ms, when no `liveness` is given: the work must end within it (it is not renewed). */
  leaseMs: number;
  /**
   * Holds last as long as their holder process is alive (one lease per process, renewed each
   * heartbeat) instead of a lease per record: for holds of unbounded length (the inbox).
   */
  liveness?: HolderLiveness;
  /** How long an applied id is remembered, seconds (the queue retention). */
  ttlSeconds: number;
  /**
   * Writes the `applied` marks of concurrent acks together (one BatchWriteItem, putBatcher.ts; the
   * table's IAM policy must allow `dynamodb:BatchWriteItem`) instead of one UpdateItem each.
   */
  batchApplied?: boolean;
  /** Item key prefix: `apply` (default, the app inbox) or another effect applied once, e.g. `witness`. */
  prefix?: string;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * Creates the apply ledger on a service's state table (items `<prefix>#<envelope id>`, `apply#` by
 * default). `applied` is unconditional: an update, or with `batchApplied` a put of the whole item
 * it leaves (`state`, `appliedAt`, `ttl`), written with the marks of concurrent acks.
 */
export function createApplyLedger(options: ApplyLedgerOptions): ApplyLedger {
  const { table, holder, leaseMs, liveness } = options;
  const now = options.now ?? Date.now;
  const prefix = options.prefix ?? 'apply';
  const pk = (id: string): string => `${prefix}#${id}`;
  const names = { '#s': 'state', '#ttl': 'ttl' };
  const marks = options.batchApplied ? createPutBatcher(table) : undefined;
  return {
    async claim(envelopeId) {
      for (let round = 0; ; round++) {
        const t = now();
        const values: Record<string, unknown> = { ':held': 'held', ':me': holder, ':lease': t + leaseMs, ':ttl': ttlAfter(options.ttlSeconds, t), ':nowSec': Math.floor(t / 1000) };
        // With liveness a hold ends when its holder does, not with a lease of its own.
        if (!liveness) values[':now'] = t;
        const claimed = await table.update(pk(envelopeId), {
          update: 'SET #s = :held, holder = :me, leaseUntil = :lease, #ttl = :ttl',
          condition: `attribute_not_exists(pk) OR #ttl < :nowSec OR (#s = :held AND (holder = :me${liveness ? '' : ' OR leaseUntil < :now'}))`,
          names,
          values,
        });
        if (claimed) return { status: 'claimed' };
        const item = await table.get(pk(envelopeId));
        if (item?.state === 'applied') return { status: 'applied' };
        if (!liveness) return { status: 'held-elsewhere', leftMs: Math.max(0, Number(item?.leaseUntil ?? 0) - t) };
        // Released or expired meanwhile: claim again. The rounds are bounded: a busy id is answered as held.
        if (!item || item.state !== 'held') {
          if (round < 3) continue;
          return { status: 'held-elsewhere', leftMs: 1000 };
        }
        const left = await liveness.leftMs(String(item.holder));
        if (left > 0) return { status: 'held-elsewhere', leftMs: left };
        // Its holder stopped renewing (a crash): take the hold over, if nobody else did.
        const taken = await table.update(pk(envelopeId), {
          update: 'SET holder = :me, leaseUntil = :lease',
          condition: '#s = :held AND holder = :old',
          names: { '#s': 'state' },
          values: { ':held': 'held', ':me': holder, ':old': item.holder, ':lease': t + leaseMs },
        });
        if (taken) return { status: 'claimed' };
        if (round >= 3) return { status: 'held-elsewhere', leftMs: 1000 };
      }
    },
    async applied(envelopeId) {
      const t = now();
      const appliedAt = new Date(t).toISOString();
      const ttl = ttlAfter(options.ttlSeconds, t);
      if (marks) return marks.put({ pk: pk(envelopeId), state: 'applied', appliedAt, ttl });
      await table.update(pk(envelopeId), {
        update: 'SET #s = :applied, appliedAt = :at, #ttl = :ttl REMOVE holder, leaseUntil',
        names,
        values: { ':applied': 'applied', ':at': appliedAt, ':ttl': ttl },
      });
    },
    async release(envelopeId) {
      await table.delete(pk(envelopeId), { condition: '#s = :held AND holder = :me', names: { '#s': 'state' }, values: { ':held': 'held', ':me': holder } });
    },
    async isApplied(envelopeId) {
      const item = await table.get(pk(envelopeId));
      // DynamoDB removes expired items only some time after their ttl: one past it counts as gone, as in `claim`.
      return item?.state === 'applied' && !(Number(item.ttl) < Math.floor(now() / 1000));
    },
  };
}
