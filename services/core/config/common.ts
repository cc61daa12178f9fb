import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { alertEnvShape } from './alerts.ts';
import { consoleEnvShape } from './console.ts';
import { DEFAULT_RECEIPT_LINGER_MS } from '../receipts/receipt.ts';
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
  /** Passphrases of this service's private keys, one per line, tried in order (or KEY_PASSPHRASE_FILE). */
  KEY_PASSPHRASE: z
    .string({ error: 'required (or KEY_PASSPHRASE_FILE)' })
    .transform((v) => v.split(/\r?\n/).filter((line) => line !== ''))
    .refine((list) => list.length > 0, 'required: at least one non-empty line'),
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
  /** Longest time to receive a whole request (headers and body), in ms; a slower client gets 408 and is disconnected. */
  HTTP_REQUEST_TIMEOUT_MS: envVar.int(30_000, 1_000, 600_000),
  /** Longest time to receive the request headers, in ms (at most HTTP_REQUEST_TIMEOUT_MS). */
  HTTP_HEADERS_TIMEOUT_MS: envVar.int(20_000, 1_000, 600_000),
  /** TLS certificate (PEM) file; with TLS_KEY_FILE the service serves HTTPS. */
  TLS_CERT_FILE: z.string().min(1).optional(),
  /** TLS private key (PEM) file. */
  TLS_KEY_FILE: z.string().min(1).optional(),
  /** OpenSSL cipher list for TLS 1.2 and 1.3; default: ECDHE with AEAD only, and TLS 1.3's suites. */
  TLS_CIPHERS: z.string().min(1).optional(),
  /** The public URL clients and webhooks use, when behind a proxy. */
  PUBLIC_BASE_URL: envVar.url().optional(),
  /** Proxies (addresses/CIDR blocks, comma-separated) whose X-Forwarded-* are trusted; `false` (default) trusts none. */
  TRUST_PROXY: envVar.trustProxy(),
  /** The audit trail file (JSON lines, hash-chained). */
  AUDIT_FILE: z.string({ error: 'required: where the audit trail is written' }).min(1),
  /** Append-only file of signed checkpoints (own and witnessed); default `<AUDIT_FILE>.checkpoints`. */
  AUDIT_CHECKPOINT_FILE: z.string().min(1).optional(),
  /** Seconds between signed checkpoints of the trail's head (also signed at start and shutdown). */
  AUDIT_CHECKPOINT_INTERVAL_SECONDS: envVar.int(300, 1, 86_400),
  /** Copy each checkpoint off the host to this S3 location (`s3://bucket/prefix`); unset = local file only. */
  AUDIT_CHECKPOINT_S3_URI: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, 'expected s3://bucket/prefix').optional(),
  /** S3 endpoint for the checkpoint copies; unset means AWS's regional endpoint. */
  AUDIT_CHECKPOINT_S3_ENDPOINT: envVar.url().optional(),
  /** S3 bucket for documents too large for one SQS message (sealed, streamed); unset = such documents get 413. */
  LARGE_OBJECT_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name').optional(),
  /** S3 endpoint of LARGE_OBJECT_BUCKET (fauxqs, LocalStack); unset means AWS's regional endpoint. */
  LARGE_OBJECT_S3_ENDPOINT: envVar.url().optional(),
  /** Largest document relayed through LARGE_OBJECT_BUCKET, in bytes (default 100 MiB). */
  LARGE_OBJECT_MAX_BYTES: envVar.int(104_857_600, 1_048_576, 5_368_709_120),
  /** SSE-KMS key (id, alias or ARN) the objects are encrypted with at rest; unset = the bucket's default encryption. */
  LARGE_OBJECT_KMS_KEY_ID: z.string().min(1).optional(),
  /** Close the open audit segment once it holds this many bytes (a new one begins, the chain continues); 0 = no size limit. */
  AUDIT_ROTATE_BYTES: envVar.int(67_108_864, 0, 5_368_709_120),
  /** Close the open audit segment once its first line is this many seconds old; 0 = no age limit. */
  AUDIT_ROTATE_SECONDS: envVar.int(86_400, 0, 31_622_400),
  /** Ship each closed audit segment to this S3 location (`s3://bucket/prefix`), under `<service>/`; unset = segments stay local only. */
  AUDIT_ARCHIVE_S3_URI: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, 'expected s3://bucket/prefix').optional(),
  /** S3 endpoint of the segment archive; unset means AWS's regional endpoint. */
  AUDIT_ARCHIVE_S3_ENDPOINT: envVar.url().optional(),
  /** Keep closed segments on disk after their upload is confirmed (default); false removes them, except the newest. */
  AUDIT_ARCHIVE_KEEP_LOCAL: envVar.bool(true),
  /** Operator override: the sha256 of a trail that does not verify, to archive it and start a new one (audited). */
  AUDIT_ACCEPT_BROKEN_TRAIL: z.string().regex(/^[0-9a-f]{64}$/, 'expected the 64 hex sha256 that the start error printed').optional(),
  /** Failed authentications per source and window before further requests from it get 429. */
  AUTH_FAILURE_LIMIT: envVar.int(10, 1, 100_000),
  /** Window of AUTH_FAILURE_LIMIT, and of the aggregated `auth.failure` audit line, in seconds. */
  AUTH_FAILURE_WINDOW_SECONDS: envVar.int(60, 1, 86_400),
  /** Key for HMAC-hashing identifiers in logs and audit (or HMAC_KEY_FILE); at least 32 characters. */
  HMAC_KEY: z.string({ error: 'required (or HMAC_KEY_FILE)' }).min(32, 'expected at least 32 characters'),
  /** Start in emergency mode (a switch made at start: it overrides the persisted state). */
  EMERGENCY_MODE: envVar.bool(false),
  /** File the emergency switch is persisted in (mode 0600); default `<AUDIT_FILE without extension>.emergency.json`. */
  EMERGENCY_STATE_FILE: z.string().min(1).optional(),
  /** Crypto worker threads (seal/open off the event loop); 0 = in-thread. Default: {@link defaultCryptoWorkers}. */
  CRYPTO_WORKERS: envVar.int(defaultCryptoWorkers(), 0, 256),
  /** openpgp.js's Ed25519, X25519 and AES-KW calls on the calling thread with Node's crypto, not as WebCrypto jobs on libuv's pool (envelope/inlineSubtle.ts). */
  CRYPTO_INLINE: envVar.bool(true),
  /** The most delivery receipts one envelope to the peer carries; 1 sends each on its own (a peer that reads only single receipts). */
  RECEIPTS_PER_ENVELOPE: envVar.int(100, 1, 100),
  /** How long a receipt nothing waits on (`held`, `rejected`, a quarantined chart update's `failed`) waits for company, ms; 0 sends it with the next envelope. */
  RECEIPT_LINGER_MS: envVar.int(DEFAULT_RECEIPT_LINGER_MS, 0, 60_000),
  ...alertEnvShape,
  ...consoleEnvShape,
};

/** Secrets both services accept as `NAME_FILE` too. */
export const COMMON_SECRETS = ['KEY_PASSPHRASE', 'HMAC_KEY'] as const;

/** Checks that hold across variables; returns the first problem, naming the variable. */
export function checkCommon(cfg: {
  TLS_CERT_FILE?: string | undefined;
  TLS_KEY_FILE?: string | undefined;
  HEARTBEAT_INTERVAL_SECONDS: number;
  VISIBILITY_TIMEOUT_SECONDS: number;
  HTTP_REQUEST_TIMEOUT_MS: number;
  HTTP_HEADERS_TIMEOUT_MS: number;
}): string | undefined {
  if (Boolean(cfg.TLS_CERT_FILE) !== Boolean(cfg.TLS_KEY_FILE)) return 'TLS_CERT_FILE: TLS_CERT_FILE and TLS_KEY_FILE must be set together';
  if (cfg.HTTP_HEADERS_TIMEOUT_MS > cfg.HTTP_REQUEST_TIMEOUT_MS) return 'HTTP_HEADERS_TIMEOUT_MS: expected at most HTTP_REQUEST_TIMEOUT_MS';
  if (cfg.HEARTBEAT_INTERVAL_SECONDS >= cfg.VISIBILITY_TIMEOUT_SECONDS) {
    return 'HEARTBEAT_INTERVAL_SECONDS: expected less than VISIBILITY_TIMEOUT_SECONDS';
  }
  return undefined;
}

/**
 * The default of `CRYPTO_WORKERS`: in-thread (0) on one or two cores, else one worker per core. On
 * two cores the pool was measured dearer than in-thread crypto with many operations in flight
 * (about twice the CPU per seal and per open: a second V8 isolate per worker, its own JIT and
 * young-generation GC, a structured clone each way) and no better for latency; docs/benchmarks.md,
 * "Pool sizing". More cores were not measured: there the pool keeps its place.
 */
export function defaultCryptoWorkers(cores: number = availableParallelism()): number {
  return cores <= 2 ? 0 : cores;
}
