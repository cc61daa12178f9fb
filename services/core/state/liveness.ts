import type { Logger } from 'pino';
import { silentLogger } from '../log/logger.ts';
import { ttlAfter, type StateTable } from './table.ts';

/**
 * One lease per process instead of one per held record: a process that holds many records
 * (an inbox of 10,000) renews a single item each heartbeat, and another process that finds
 * one of its records asks whether the holder is still alive.
 */
export interface HolderLiveness {
  /** How much longer `holder`'s lease runs, ms; 0 when it ended or the holder stopped. */
  leftMs(holder: string): Promise<number>;
  /** Writes this process's lease and renews it every `renewMs` until {@link HolderLiveness.stop}. */
  start(): Promise<void>;
  /** Stops renewing and deletes the lease, so what this process still holds is taken over at once. */
  stop(): Promise<void>;
}

/** Options for {@link createHolderLiveness}. */
export interface HolderLivenessOptions {
  /** The service's state table (items `live#<holder>`). */
  table: StateTable;
  /** This process (holderId()). */
  holder: string;
  /** The lease, ms: how long a process that stopped renewing (a crash) still counts as alive. */
  leaseMs: number;
  /** How often the lease is renewed, ms (less than `leaseMs`). */
  renewMs: number;
  /** Service logger (a failed renewal is a warning: the next one may succeed within the lease). */
  logger?: Logger;
  /** Clock, for tests. */
  now?: () => number;
}

/** A dead holder's item is removed by DynamoDB's TTL a day later (it is never read after its lease). */
const ITEM_TTL_SECONDS = 86_400;

/** Creates this process's liveness lease on the service's state table. */
export function createHolderLiveness(options: HolderLivenessOptions): HolderLiveness {
  const { table, holder, leaseMs } = options;
  const now = options.now ?? Date.now;
  const log = options.logger ?? silentLogger;
  const pk = (h: string): string => `live#${h}`;
  let timer: NodeJS.Timeout | undefined;
  let renewing: Promise<unknown> = Promise.resolve();

  const write = async (): Promise<void> => {
    const t = now();
    await table.put({ pk: pk(holder), leaseUntil: t + leaseMs, ttl: ttlAfter(ITEM_TTL_SECONDS, t) });
  };

  return {
    async leftMs(other) {
      const item = await table.get(pk(other));
      return item ? Math.max(0, Number(item.leaseUntil ?? 0) - now()) : 0;
    },
    async start() {
      await write();
      timer = setInterval(() => {
        renewing = write().catch((err: unknown) => log.warn({ code: (err as { name?: string }).name }, 'holder lease renewal failed'));
      }, options.renewMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await renewing;
      await table.delete(pk(holder)).catch((err: unknown) => log.warn({ code: (err as { name?: string }).name }, 'holder lease not removed: it ends by itself'));
    },
  };
}
