import { availableParallelism } from 'node:os';
import type { ResourceLimits } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Envelope } from '../envelope/envelope.ts';
import { ENVELOPE_ERROR_CODES, EnvelopeError, type EnvelopeErrorCode } from '../envelope/errors.ts';
import { KEY_ERROR_CODES, KeyError, type KeyErrorCode } from '../keys/errors.ts';
import type { OpenLimits, RelayCrypto, SealedMessage } from './crypto.ts';
import type { CryptoReply, CryptoTask, CryptoWorkerData, SerializedError } from './cryptoWorker.ts';

/** Options for {@link createCryptoPool}. */
export interface CryptoPoolOptions {
  /** The service's own key folder: each worker loads it once. */
  keysDir: string;
  /** Passphrase(s) of the private keys, handed to the workers (never logged). */
  passphrase: string | readonly string[];
  /** Limits applied when opening. */
  limits: OpenLimits;
  /** Worker threads; the number of cores (`os.availableParallelism()`) by default. */
  threads?: number;
  /** Tasks a worker runs at once; default {@link DEFAULT_TASKS_PER_THREAD}. */
  tasksPerThread?: number;
  /** V8 heap limits of each worker; default {@link DEFAULT_WORKER_LIMITS}. */
  resourceLimits?: ResourceLimits;
  /** Each worker runs openpgp.js's Ed25519, X25519 and AES-KW calls on its own thread (envelope/inlineSubtle.ts); default true. */
  inline?: boolean;
}

/**
 * Tasks each worker runs at once. With `CRYPTO_INLINE=false` openpgp.js's curve operations run as
 * WebCrypto jobs on libuv's thread pool, and one task at a time would leave the worker idle while it
 * waits; inline (the default), several tasks still overlap what the worker awaits between steps, and
 * the same steps of several tasks run next to each other, which costs less CPU per operation than one
 * at a time. 8 rather than 4: at 4 KiB, 16 in flight on 2 workers, 13.5 % more seals and opens a second in the
 * median of ten alternated rounds; at 64 KiB the same rate (docs/benchmarks.md, "Tasks per crypto worker: 8").
 */
export const DEFAULT_TASKS_PER_THREAD = 8;

/**
 * Heap limits of a crypto worker: a small young generation. Unbounded, each worker's grew
 * to its default maximum while opening and kept it (+70 MiB per worker after 5,000 opens);
 * at 8 MB the rate is the same (docs/benchmarks.md). The old generation is left uncapped,
 * so that a 1 MiB message can never run a worker out of memory.
 */
export const DEFAULT_WORKER_LIMITS: ResourceLimits = Object.freeze({ maxYoungGenerationSizeMb: 8 });

/** RelayCrypto backed by worker threads. */
export interface CryptoPool extends RelayCrypto {
  /** Worker threads alive now (0 once closed). */
  readonly threads: number;
}

// Node 24 strips types in workers too: piscina loads the .ts worker as it is.
const WORKER_URL = new URL('./cryptoWorker.ts', import.meta.url).href;

/** Rebuilds a worker's error as the same class with the same code, so callers can branch on it. */
export function rebuildError(error: SerializedError): Error {
  if (error.kind === 'envelope' && (ENVELOPE_ERROR_CODES as readonly string[]).includes(error.code ?? '')) {
    return new EnvelopeError(error.code as EnvelopeErrorCode, error.message, undefined, error.attributed);
  }
  if (error.kind === 'key' && (KEY_ERROR_CODES as readonly string[]).includes(error.code ?? '')) {
    return new KeyError(error.code as KeyErrorCode, error.message);
  }
  if (error.kind === 'type') return new TypeError(error.message);
  return new Error(error.message);
}

/**
 * Starts a pool of crypto worker threads, each holding the service's keys (loaded once,
 * from `keysDir`), and resolves once the workers answer with their keys loaded; a KeyError
 * there is thrown as is. seal/open run in the workers and throw the same typed errors as in-thread.
 */
export async function createCryptoPool(options: CryptoPoolOptions): Promise<CryptoPool> {
  const threads = Math.max(1, Math.floor(options.threads ?? availableParallelism()));
  const workerData: CryptoWorkerData = { keysDir: options.keysDir, passphrase: options.passphrase, limits: options.limits, inline: options.inline ?? true };
  const pool = new Piscina<CryptoTask, CryptoReply>({
    filename: WORKER_URL,
    workerData,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Infinity,
    recordTiming: false,
    resourceLimits: options.resourceLimits ?? DEFAULT_WORKER_LIMITS,
    concurrentTasksPerWorker: Math.max(1, Math.floor(options.tasksPerThread ?? DEFAULT_TASKS_PER_THREAD)),
  });
  let closed: Promise<void> | undefined;
  const run = async <T>(task: CryptoTask): Promise<T> => {
    // piscina would start new workers for a task after destroy(): a closed pool stays closed.
    if (closed) throw new Error('crypto pool is closed');
    const reply = await pool.run(task);
    if (!reply || typeof reply !== 'object') throw new Error('crypto worker returned no answer');
    if (!reply.ok) throw rebuildError(reply.error);
    return reply.value as T;
  };
  try {
    // Probes (one per thread): fail fast, and cleanly, when the workers cannot load the keys.
    await Promise.all(Array.from({ length: threads }, () => run<true>({ op: 'ready' })));
  } catch (err) {
    await pool.destroy();
    throw err;
  }
  return {
    seal: (envelope) => run<SealedMessage>({ op: 'seal', envelope }),
    open: (armored, check) =>
      run<Envelope>({ op: 'open', armored, queue: check.queue, ...(check.now ? { now: check.now.getTime() } : {}) }),
    close: () => (closed ??= pool.destroy()),
    get threads() {
      return pool.threads.length;
    },
  };
}
