import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import { openAuditLog, type AuditLog } from '../audit/auditLog.ts';
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
import { EmergencySwitch } from './emergency.ts';

/** The configuration fields every service runtime needs (a subset of the service config). */
export interface RuntimeConfig {
  LOG_LEVEL: string;
  KEYS_DIR: string;
  KEY_PASSPHRASE: string;
  SQS_ENDPOINT?: string | undefined;
  DYNAMODB_ENDPOINT?: string | undefined;
  STATE_TABLE?: string | undefined;
  AWS_REGION: string;
  QUEUE_PREFIX: string;
  QUEUE_FIFO: boolean;
  AUDIT_FILE: string;
  HMAC_KEY: string;
  MAX_CLOCK_SKEW_SECONDS: number;
  MESSAGE_MAX_AGE_SECONDS: number;
  EMERGENCY_MODE: boolean;
  /** Crypto worker threads; 0 or absent = in-thread crypto. */
  CRYPTO_WORKERS?: number | undefined;
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
  /** The audit trail. */
  audit: AuditLog;
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
  /** Closes what the runtime opened (crypto workers, audit file, SQS and DynamoDB clients). */
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
}

/**
 * Builds a service's runtime: loads and audits its keys, opens the audit trail,
 * checks its state table, resolves its queues (failing with the missing queue's name) and sets up metrics.
 * Any failure is one clear error; nothing is left half-open.
 */
export async function startRuntime<Q extends LogicalQueue>(options: StartRuntimeOptions<Q>): Promise<Runtime<Q>> {
  const { config, service } = options;
  const logger = options.logger ?? createLogger({ service, level: config.LOG_LEVEL });
  const keys = await loadServiceKeys({ dir: config.KEYS_DIR, passphrase: config.KEY_PASSPHRASE });
  const audit = await openAuditLog({ file: config.AUDIT_FILE, service });
  const sqs = createSqsClient({ region: config.AWS_REGION, ...(config.SQS_ENDPOINT ? { endpoint: config.SQS_ENDPOINT } : {}) });
  const state = openStateTable({
    table: config.STATE_TABLE ?? stateTableName(config.QUEUE_PREFIX, service),
    region: config.AWS_REGION,
    ...(config.DYNAMODB_ENDPOINT ? { endpoint: config.DYNAMODB_ENDPOINT } : {}),
  });
  try {
    await audit.record({
      action: 'key.loaded',
      actor: service,
      resourceType: 'key',
      resourceId: keys.own.fingerprint,
      outcome: 'success',
      details: { older: keys.own.older.length, peers: keys.peers.pinned.map((p) => p.fingerprint).join(',') },
    });
    logger.info({ fingerprint: keys.own.fingerprint, peers: keys.peers.pinned.length }, 'keys loaded');
    await state.check();
    const queues = await resolveQueues(sqs, { prefix: config.QUEUE_PREFIX, fifo: config.QUEUE_FIFO, queues: options.queues });
    const limits = { self: service, maxSkewMs: config.MAX_CLOCK_SKEW_SECONDS * 1000, maxAgeMs: config.MESSAGE_MAX_AGE_SECONDS * 1000 };
    const crypto = options.crypto
      ? options.crypto(keys)
      : (config.CRYPTO_WORKERS ?? 0) > 0
        ? await createCryptoPool({ keysDir: config.KEYS_DIR, passphrase: config.KEY_PASSPHRASE, limits, threads: config.CRYPTO_WORKERS! })
        : localCrypto(keys, limits);
    const emergency = new EmergencySwitch(false, audit, service);
    // Starting in emergency mode (EMERGENCY_MODE) is a switch too: audited with actor `config`.
    if (config.EMERGENCY_MODE) {
      await emergency.set(true, { actor: 'config' });
      logger.warn({ active: true }, 'emergency mode on at start');
    }
    return {
      service,
      logger,
      keys,
      crypto,
      audit,
      sqs,
      queues,
      metrics: createMetrics(service),
      state,
      holder: holderId(),
      stateTtlSeconds: config.MESSAGE_MAX_AGE_SECONDS,
      emergency,
      hash: (value) => hashId(config.HMAC_KEY, value),
      close: async () => {
        await crypto.close();
        await audit.close();
        sqs.destroy();
        await state.close();
      },
    };
  } catch (err) {
    await audit.close();
    sqs.destroy();
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
