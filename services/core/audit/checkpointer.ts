import type { PrivateKey } from 'openpgp';
import type { Logger } from 'pino';
import { silentLogger } from '../log/logger.ts';
import type { AuditLog } from './auditLog.ts';
import { signCheckpoint, type SignedCheckpoint } from './checkpoint.ts';
import type { CheckpointStore } from './checkpointStore.ts';

/** Somewhere a signed checkpoint is sent: off the host (S3) or to the peer for witnessing. */
export type CheckpointSink = (signed: SignedCheckpoint) => Promise<void>;

/** Options for {@link createCheckpointer}. */
export interface CheckpointerOptions {
  /** Service name. */
  service: string;
  /** The trail whose head is signed. */
  audit: Pick<AuditLog, 'head'>;
  /** The service's current private key. */
  key: PrivateKey;
  /** The local checkpoint file. */
  store: CheckpointStore;
  /** Milliseconds between checkpoints. */
  intervalMs: number;
  /** Copies each checkpoint off the host (S3), when configured. */
  ship?: CheckpointSink | undefined;
  /** pino logger; silent by default. */
  logger?: Logger;
  /** Clock (tests). */
  now?: () => Date;
}

/** Signs the trail's head now and then, keeps it apart from the trail, ships it and has the peer witness it. */
export interface Checkpointer {
  /** Signs the current head, appends it to the store, ships it and sends it to the witness. Skips an empty trail. */
  checkpoint(reason: 'start' | 'interval' | 'rotation' | 'shutdown'): Promise<SignedCheckpoint | undefined>;
  /** Starts the periodic checkpoints; `witness` sends each one to the peer (starting with the last one signed). */
  start(witness?: CheckpointSink): void;
  /** Stops the timer and signs a last checkpoint (shutdown). */
  stop(): Promise<void>;
}

/**
 * Creates the checkpointer of a service. The local store write must succeed (its failure is
 * thrown); shipping and witnessing are best effort, logged when they fail, and retried in effect
 * by the next checkpoint, which covers everything before it.
 */
export function createCheckpointer(options: CheckpointerOptions): Checkpointer {
  const log = options.logger ?? silentLogger;
  const now = options.now ?? (() => new Date());
  let witness: CheckpointSink | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  let lastSigned: SignedCheckpoint | undefined;

  async function deliver(name: string, sink: CheckpointSink | undefined, signed: SignedCheckpoint): Promise<void> {
    if (!sink) return;
    try {
      await sink(signed);
    } catch (err) {
      log.warn({ seq: signed.checkpoint.seq, target: name, code: (err as { code?: string; name?: string }).code ?? (err as Error).name }, 'audit checkpoint not sent');
    }
  }

  async function checkpoint(reason: 'start' | 'interval' | 'rotation' | 'shutdown'): Promise<SignedCheckpoint | undefined> {
    const head = options.audit.head();
    if (head.seq === 0) return undefined;
    const signed = await signCheckpoint({ service: options.service, seq: head.seq, headHash: head.hash, at: now().toISOString() }, options.key);
    await options.store.append(signed);
    lastSigned = signed;
    await Promise.all([deliver('s3', options.ship, signed), deliver('peer', witness, signed)]);
    log.info({ seq: head.seq, reason }, 'audit checkpoint signed');
    return signed;
  }

  const serial = (reason: 'start' | 'interval' | 'rotation' | 'shutdown'): Promise<SignedCheckpoint | undefined> => {
    const next = running.then(() => checkpoint(reason));
    running = next.catch(() => {});
    return next;
  };

  return {
    checkpoint: serial,
    start(sink) {
      witness = sink;
      if (timer || stopped) return;
      const pending = lastSigned;
      if (pending) running = running.then(() => deliver('peer', sink, pending));
      timer = setInterval(() => {
        serial('interval').catch((err: unknown) => log.error({ code: (err as { code?: string }).code }, 'audit checkpoint failed'));
      }, options.intervalMs);
      timer.unref();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await serial('shutdown');
    },
  };
}
