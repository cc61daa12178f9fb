import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { envVar } from './env.ts';

/** Environment variables both services read (each through its own config.ts). */
export const commonEnvShape = {
  /** Listening port. */
  PORT: envVar.int(8080, 0, 65535),
  /** Listening address. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** pino level. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** This service's own key folder (private.asc, public.asc, peers/). */
  KEYS_DIR: z.string({ error: 'required: the folder with this service\'s keys' }).min(1),
  /** Passphrase of this service's private keys (or KEY_PASSPHRASE_FILE). */
  KEY_PASSPHRASE: z.string({ error: 'required (or KEY_PASSPHRASE_FILE)' }).min(1),
  /** SQS endpoint; unset means AWS's regional endpoint. */
  SQS_ENDPOINT: envVar.url().optional(),
  /** DynamoDB endpoint of the state table (dynalite, LocalStack); unset means AWS's regional endpoint. */
  DYNAMODB_ENDPOINT: envVar.url().optional(),
  /** This service's state table; default `<QUEUE_PREFIX><service>-state`. */
  STATE_TABLE: z.string().regex(/^[A-Za-z0-9_.-]{3,255}$/, 'expected 3 to 255 letters, digits, _ . or -').optional(),
  /** AWS region. */
  AWS_REGION: z.string().min(1).default('us-east-1'),
  /** Prefix of every physical queue name. */
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]*$/, 'expected letters, digits, - or _').default(''),
  /** Use FIFO queues (`.fifo`). */
  QUEUE_FIFO: envVar.bool(false),
  /** Seconds a received message stays invisible between heartbeats. */
  VISIBILITY_TIMEOUT_SECONDS: envVar.int(60, 5, 43_200),
  /** Seconds between visibility heartbeats (less than the visibility timeout). */
  HEARTBEAT_INTERVAL_SECONDS: envVar.int(20, 1, 43_000),
  /** Allowed clock skew for an envelope's sentAt in the future. */
  MAX_CLOCK_SKEW_SECONDS: envVar.int(300, 0, 86_400),
  /** Oldest envelope accepted (the queue's retention). */
  MESSAGE_MAX_AGE_SECONDS: envVar.int(345_600, 60, 1_209_600),
  /** Milliseconds SIGTERM waits for in-flight work before releasing it. */
  SHUTDOWN_DEADLINE_MS: envVar.int(20_000, 0, 600_000),
  /** TLS certificate (PEM) file; with TLS_KEY_FILE the service serves HTTPS. */
  TLS_CERT_FILE: z.string().min(1).optional(),
  /** TLS private key (PEM) file. */
  TLS_KEY_FILE: z.string().min(1).optional(),
  /** The public URL clients and webhooks use, when behind a proxy. */
  PUBLIC_BASE_URL: envVar.url().optional(),
  /** Trust X-Forwarded-* from the proxy in front. */
  TRUST_PROXY: envVar.bool(false),
  /** The audit trail file (JSON lines, hash-chained). */
  AUDIT_FILE: z.string({ error: 'required: where the audit trail is written' }).min(1),
  /** Key for HMAC-hashing identifiers in logs and audit (or HMAC_KEY_FILE); at least 32 characters. */
  HMAC_KEY: z.string({ error: 'required (or HMAC_KEY_FILE)' }).min(32, 'expected at least 32 characters'),
  /** Start in emergency mode. */
  EMERGENCY_MODE: envVar.bool(false),
  /** Crypto worker threads (seal/open off the event loop); 0 = in-thread. Default: the cores, or 0 on one core. */
  CRYPTO_WORKERS: envVar.int(availableParallelism() < 2 ? 0 : availableParallelism(), 0, 256),
};

/** Secrets both services accept as `NAME_FILE` too. */
export const COMMON_SECRETS = ['KEY_PASSPHRASE', 'HMAC_KEY'] as const;

/** Checks that hold across variables; returns the first problem, naming the variable. */
export function checkCommon(cfg: { TLS_CERT_FILE?: string | undefined; TLS_KEY_FILE?: string | undefined; HEARTBEAT_INTERVAL_SECONDS: number; VISIBILITY_TIMEOUT_SECONDS: number }): string | undefined {
  if (Boolean(cfg.TLS_CERT_FILE) !== Boolean(cfg.TLS_KEY_FILE)) return 'TLS_CERT_FILE: TLS_CERT_FILE and TLS_KEY_FILE must be set together';
  if (cfg.HEARTBEAT_INTERVAL_SECONDS >= cfg.VISIBILITY_TIMEOUT_SECONDS) {
    return 'HEARTBEAT_INTERVAL_SECONDS: expected less than VISIBILITY_TIMEOUT_SECONDS';
  }
  return undefined;
}
