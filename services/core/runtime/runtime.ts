import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import type { S3Client } from '@aws-sdk/client-s3';
import { watchAuditFailures, type WatchedAudit } from '../alerts/auditWatch.ts';
import { openAuditLog, type AuditLog } from '../audit/auditLog.ts';
import { createCheckpointer, type Checkpointer, type CheckpointSink } from '../audit/checkpointer.ts';
import { checkpointStore, type CheckpointStore } from '../audit/checkpointStore.ts';
import { setUpRetention } from '../audit/retention.ts';
import { checkTrailAtStart } from '../audit/startCheck.ts';
import { tornTailEvent } from '../audit/tornTail.ts';
import { createAuthFailureLimiter, type AuthFailureLimiter } from '../http/authFailures.ts';
import { loadServiceKeys, type ServiceKeys } from '../keys/load.ts';
import { createLogger, hashId } from '../log/logger.ts';
import { createMetrics, type Metrics } from '../metrics/registry.ts';
import { localCrypto, type RelayCrypto } from '../relay/crypto.ts';
import { createCryptoPool } from '../relay/cryptoPool.ts';
import { holderId } from '../state/holder.ts';
import { openStateTable, type StateTable } from '../state/table.ts';
import { stateTableName } from '../state/tables.ts';
import { resolveQueues, type LogicalQueue, type ResolvedQueue } from '../transport/queues.ts';
import { createSqsClient } from '../transport/sqsClient.ts';
import { installInlineSubtle } from '../envelope/inlineSubtle.ts';
import { EmergencySwitch } from './emergency.ts';
import { defaultEmergencyStateFile, fileEmergencyStore, type EmergencyStore } from './emergencyStore.ts';
import { startMemoryReducerNudge } from './memoryReducer.ts';

/** The configuration fields every service runtime needs (a subset of the service config). */
export interface RuntimeConfig {
  LOG_LEVEL: string;
  KEYS_DIR: string;
  KEY_PASSPHRASE: string | readonly string[];
  SQS_ENDPOINT?: string | undefined;
  DYNAMODB_ENDPOINT?: string | undefined;
  STATE_TABLE?: string | undefined;
  AWS_REGION: string;
  QUEUE_PREFIX: string;
  QUEUE_FIFO: boolean;
  AUDIT_FILE: string;
  AUDIT_CHECKPOINT_FILE?: string | undefined;
  AUDIT_CHECKPOINT_INTERVAL_SECONDS: number;
  AUDIT_CHECKPOINT_S3_URI?: string | undefined;
  AUDIT_CHECKPOINT_S3_ENDPOINT?: string | undefined;
  AUDIT_ACCEPT_BROKEN_TRAIL?: string | undefined;
  AUDIT_ROTATE_BYTES?: number | undefined;
  AUDIT_ROTATE_SECONDS?: number | undefined;
  AUDIT_ARCHIVE_S3_URI?: string | undefined;
  AUDIT_ARCHIVE_S3_ENDPOINT?: string | undefined;
  AUDIT_ARCHIVE_KEEP_LOCAL?: boolean | undefined;
  AUTH_FAILURE_LIMIT: number;
  AUTH_FAILURE_WINDOW_SECONDS: number;
  HMAC_KEY: string;
  MAX_CLOCK_SKEW_SECONDS: number;
  MESSAGE_MAX_AGE_SECONDS: number;
  EMERGENCY_MODE: boolean;
  /** Where the emergency switch is persisted; next to AUDIT_FILE when absent. */
  EMERGENCY_STATE_FILE?: string | undefined;
  /** Crypto worker threads; 0 or absent = in-thread crypto. */
  CRYPTO_WORKERS?: number | undefined;
  /** openpgp.js's Ed25519, X25519 and AES-KW calls on the calling thread (envelope/inlineSubtle.ts); on unless false. */
  CRYPTO_INLINE?: boolean | undefined;
}

/** What a service process is built from: logger, keys, crypto, audit, SQS, metrics. */
export interface Runtime<Q extends LogicalQueue> {
  /** Service name. */
  service: string;
  /** The service's pino logger. */
  logger: Logger;
  /** Own and pinned peer keys. */
  keys: ServiceKeys;
  /** Seal and open. */
  crypto: RelayCrypto;
  /** The audit trail (its failed writes are remembered for the alerts). */
  audit: WatchedAudit<AuditLog>;
  /** Signs the trail's head at start, every AUDIT_CHECKPOINT_INTERVAL_SECONDS, at each segment rotation and at close. */
  checkpoints: Checkpointer;
  /** The checkpoint file (own and witnessed checkpoints). */
  checkpointStore: CheckpointStore;
  /** Failed authentications per source: limited (429) and aggregated into few audit lines. */
  authFailures: AuthFailureLimiter;
  /** The SQS client. */
  sqs: SQSClient;
  /** URLs of the queues this service uses. */
  queues: Record<Q, ResolvedQueue>;
  /** Metrics registry. */
  metrics: Metrics;
  /** The service's own state table (exactly-once state shared by its instances). */
  state: StateTable;
  /** This process's id for leases in the state table. */
  holder: string;
  /** Seconds state about a message is kept: the queue retention (MESSAGE_MAX_AGE_SECONDS). */
  stateTtlSeconds: number;
  /** Emergency mode switch. */
  emergency: EmergencySwitch;
  /** HMAC of an identifier for logs and audit. */
  hash(value: string): string;
  /** Signs a last checkpoint, then closes what the runtime opened (crypto workers, audit file, SQS and DynamoDB clients). */
  close(): Promise<void>;
}

/** Options for {@link startRuntime}. */
export interface StartRuntimeOptions<Q extends LogicalQueue> {
  /** `interface` or `app`. */
  service: string;
  /** Validated configuration. */
  config: RuntimeConfig;
  /** Logical queues the service sends to or receives from. */
  queues: readonly Q[];
  /** Logger destination (tests). */
  logger?: Logger;
  /** Replaces the crypto chosen from CRYPTO_WORKERS (worker pool or in-thread). */
  crypto?: (keys: ServiceKeys) => RelayCrypto;
  /** Where the emergency switch is persisted; the EMERGENCY_STATE_FILE file store otherwise. */
  emergencyStore?: EmergencyStore;
  /** Replaces the DynamoDB state table (the bench's in-memory table, to measure the relay without the store). */
  stateTable?: (name: string) => StateTable;
}

/**
 * Builds a service's runtime: loads its keys, verifies the audit trail against its signed
 * checkpoints (refusing to start on a trail that does not verify, unless the operator's
 * AUDIT_ACCEPT_BROKEN_TRAIL names it), opens it, audits the keys, signs a start checkpoint,
 * checks its state table, resolves its queues (failing with the missing queue's name) and sets up metrics.
 * Any failure is one clear error; nothing is left half-open.
 */
export async function startRuntime<Q extends LogicalQueue>(options: StartRuntimeOptions<Q>): Promise<Runtime<Q>> {
  const { config, service } = options;
  const logger = options.logger ?? createLogger({ service, level: config.LOG_LEVEL });
  // Before the keys load: openpgp.js checks each decrypted key with a signature of its own.
  if (config.CRYPTO_INLINE !== false) installInlineSubtle();
  const keys = await loadServiceKeys({ dir: config.KEYS_DIR, passphrase: config.KEY_PASSPHRASE });
  const checkpointFile = config.AUDIT_CHECKPOINT_FILE ?? `${config.AUDIT_FILE}.checkpoints`;
  const trail = await checkTrailAtStart({
    file: config.AUDIT_FILE,
    checkpointFile,
    service,
    keys: [keys.own.current, ...keys.own.older].map((k) => k.toPublic()),
    acceptDigest: config.AUDIT_ACCEPT_BROKEN_TRAIL,
  });
  const retention = await setUpRetention(config, service, logger);
  const audit = watchAuditFailures(await openAuditLog({ file: config.AUDIT_FILE, service, ...retention.rotation }));
  const sqs = createSqsClient({ region: config.AWS_REGION, ...(config.SQS_ENDPOINT ? { endpoint: config.SQS_ENDPOINT } : {}) });
  let crypto: RelayCrypto | undefined;
  // Loaded only when configured: the S3 client is a large module and most deployments start without it.
  let s3: S3Client | undefined;
  let ship: CheckpointSink | undefined;
  if (config.AUDIT_CHECKPOINT_S3_URI) {
    const { parseS3Uri, s3CheckpointSink } = await import('../audit/checkpointShip.ts');
    const { S3Client: Client } = await import('@aws-sdk/client-s3');
    const location = parseS3Uri(config.AUDIT_CHECKPOINT_S3_URI)!;
    s3 = new Client({ region: config.AWS_REGION, forcePathStyle: true, ...(config.AUDIT_CHECKPOINT_S3_ENDPOINT ? { endpoint: config.AUDIT_CHECKPOINT_S3_ENDPOINT } : {}) });
    ship = s3CheckpointSink(s3, location);
  }
  const store = checkpointStore(checkpointFile);
  const checkpoints = createCheckpointer({
    service,
    audit,
    key: keys.own.current,
    store,
    intervalMs: config.AUDIT_CHECKPOINT_INTERVAL_SECONDS * 1000,
    ship,
    logger,
  });
  const authFailures = createAuthFailureLimiter({ audit, limit: config.AUTH_FAILURE_LIMIT, windowMs: config.AUTH_FAILURE_WINDOW_SECONDS * 1000, logger });
  const tableName = config.STATE_TABLE ?? stateTableName(config.QUEUE_PREFIX, service);
  const state = options.stateTable
    ? options.stateTable(tableName)
    : openStateTable({
        table: tableName,
        region: config.AWS_REGION,
        ...(config.DYNAMODB_ENDPOINT ? { endpoint: config.DYNAMODB_ENDPOINT } : {}),
        onBatchDenied: () =>
          logger.warn(
            { code: 'CR_STATE_BATCH_DENIED', table: tableName },
            'the state table refused BatchWriteItem (AccessDenied): writing each item with its own PutItem from now on; allow dynamodb:BatchWriteItem on the table (docs/deploy.md)',
          ),
      });
  const limits = { self: service, maxSkewMs: config.MAX_CLOCK_SKEW_SECONDS * 1000, maxAgeMs: config.MESSAGE_MAX_AGE_SECONDS * 1000 };
  // The worker pool loads its modules and keys (seconds on a busy host) while the rest of the start
  // runs: started here, awaited below, closed on a failed start like everything else.
  const poolStarting =
    !options.crypto && (config.CRYPTO_WORKERS ?? 0) > 0
      ? createCryptoPool({ keysDir: config.KEYS_DIR, passphrase: config.KEY_PASSPHRASE, limits, threads: config.CRYPTO_WORKERS!, inline: config.CRYPTO_INLINE !== false })
      : undefined;
  poolStarting?.catch(() => undefined);
  try {
    if (trail.status === 'overridden') {
      await audit.record({
        action: 'audit.override',
        actor: 'operator',
        resourceType: 'audit-trail',
        resourceId: trail.digest,
        outcome: 'success',
        details: {
          reason: trail.reason,
          previousSeq: trail.head.seq,
          previousHash: trail.head.hash,
          ...(trail.archived.trail ? { archivedTrail: trail.archived.trail } : {}),
          ...(trail.archived.checkpoints ? { archivedCheckpoints: trail.archived.checkpoints } : {}),
          ...(trail.archived.segments ? { archivedSegments: trail.archived.segments } : {}),
        },
      });
      logger.warn({ digest: trail.digest, archived: trail.archived.trail }, 'audit trail did not verify: archived by AUDIT_ACCEPT_BROKEN_TRAIL, new trail started');
    } else if (trail.unusedOverride) {
      logger.warn('AUDIT_ACCEPT_BROKEN_TRAIL is set but the trail verifies: ignored; remove it');
    }
    for (const torn of trail.torn) {
      await audit.record(tornTailEvent(service, torn, trail.status === 'ok' ? trail.head.seq : undefined));
      logger.warn({ of: torn.of, bytes: torn.bytes, savedAs: torn.savedAs }, 'audit file ended in an incomplete line (a write cut short by a crash): moved aside, going on from its last complete line');
    }
    await audit.record({
      action: 'key.loaded',
      actor: service,
      resourceType: 'key',
      resourceId: keys.own.fingerprint,
      outcome: 'success',
      details: { older: keys.own.older.length, peers: keys.peers.pinned.map((p) => p.fingerprint).join(',') },
    });
    logger.info({ fingerprint: keys.own.fingerprint, peers: keys.peers.pinned.length }, 'keys loaded');
    await checkpoints.checkpoint('start');
    await retention.start(audit, checkpoints);
    await state.check();
    const queues = await resolveQueues(sqs, { prefix: config.QUEUE_PREFIX, fifo: config.QUEUE_FIFO, queues: options.queues });
    const relayCrypto = options.crypto ? options.crypto(keys) : poolStarting ? await poolStarting : localCrypto(keys, limits);
    crypto = relayCrypto;
    const emergencyStore = options.emergencyStore ?? fileEmergencyStore(config.EMERGENCY_STATE_FILE ?? defaultEmergencyStateFile(config.AUDIT_FILE));
    // An unreadable or invalid state throws here: the service does not start (fail closed).
    const persisted = await emergencyStore.load();
    const emergency = new EmergencySwitch(persisted ?? false, audit, service, emergencyStore);
    // EMERGENCY_MODE=true is a switch made at this start (actor `config`), so it is newer than
    // any persisted state; otherwise the persisted state stands until an admin changes it.
    if (config.EMERGENCY_MODE) {
      await emergency.set(true, { actor: 'config' });
      logger.warn({ active: true }, 'emergency mode on at start');
    } else if (persisted?.active) {
      logger.warn({ active: true, since: persisted.changedAt, actor: persisted.actor }, 'emergency mode on at start (persisted)');
    }
    // Freed heap pages go back to the OS once the process is idle (memoryReducer.ts).
    const memoryReducer = startMemoryReducerNudge();
    return {
      service,
      logger,
      keys,
      crypto: relayCrypto,
      audit,
      checkpoints,
      checkpointStore: store,
      authFailures,
      sqs,
      queues,
      metrics: createMetrics(service),
      state,
      holder: holderId(),
      stateTtlSeconds: config.MESSAGE_MAX_AGE_SECONDS,
      emergency,
      hash: (value) => hashId(config.HMAC_KEY, value),
      close: async () => {
        memoryReducer.stop();
        await authFailures.close();
        await checkpoints.stop().catch((err: unknown) => logger.error({ code: (err as { code?: string }).code }, 'last audit checkpoint failed'));
        await retention.close();
        await relayCrypto.close();
        await audit.close();
        sqs.destroy();
        s3?.destroy();
        await state.close();
      },
    };
  } catch (err) {
    // Whatever was opened is closed again, the crypto worker pool included (also one still starting).
    await (crypto ?? (await poolStarting?.catch(() => undefined)))?.close();
    await authFailures.close();
    await retention.close();
    await audit.close();
    sqs.destroy();
    s3?.destroy();
    await state.close();
    throw err;
  }
}

/**
 * Runs `stop` once on SIGTERM or SIGINT (graceful drain) and exits when it finishes;
 * a second signal exits at once. SIGHUP calls `reload` when given.
 */
export function handleSignals(logger: Logger, stop: () => Promise<void>, reload?: () => void): void {
  let stopping = false;
  const onStop = (signal: string): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'stopping');
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onStop('SIGTERM'));
  process.on('SIGINT', () => onStop('SIGINT'));
  if (reload) process.on('SIGHUP', reload);
}
