// A crypto worker thread of the pool (cryptoPool.ts): it loads the service's keys once,
// from the folder, and seals and opens on request. Errors travel back as values.
import { workerData } from 'node:worker_threads';
import type { Envelope } from '../envelope/envelope.ts';
import { EnvelopeError } from '../envelope/errors.ts';
import { installInlineSubtle } from '../envelope/inlineSubtle.ts';
import { KeyError } from '../keys/errors.ts';
import { loadServiceKeys } from '../keys/load.ts';
import { startMemoryReducerNudge } from '../runtime/memoryReducer.ts';
import { localCrypto, type OpenLimits, type RelayCrypto, type SealedMessage } from './crypto.ts';

/** What each worker is started with (piscina `workerData`); the passphrase is never logged. */
export interface CryptoWorkerData {
  /** The service's own key folder. */
  keysDir: string;
  /** Passphrase(s) of the private keys. */
  passphrase: string | readonly string[];
  /** Limits applied when opening. */
  limits: OpenLimits;
  /** Run openpgp.js's Ed25519, X25519 and AES-KW calls on this thread (envelope/inlineSubtle.ts). */
  inline: boolean;
}

/** One request to a worker. */
export type CryptoTask =
  | { op: 'ready' }
  | { op: 'seal'; envelope: Envelope }
  | { op: 'open'; armored: string; queue: string; now?: number };

/** An error as it crosses the thread boundary: its class, stable code and message (no cause). */
export interface SerializedError {
  /** Which class to rebuild. */
  kind: 'envelope' | 'key' | 'type' | 'other';
  /** The stable code (EnvelopeError, KeyError), when there is one. */
  code?: string;
  /** The error's message (PHI-free by the error catalogues' rule). */
  message: string;
  /** EnvelopeError: the signed id and kind of a refused envelope, when known. */
  attributed?: { id: string; kind: string };
}

/** A worker's answer: a value, or the serialized error. */
export type CryptoReply = { ok: true; value: SealedMessage | Envelope | true } | { ok: false; error: SerializedError };

/** Turns any thrown value into its serializable form, keeping the class and code. */
function serializeError(err: unknown): SerializedError {
  if (err instanceof EnvelopeError) return { kind: 'envelope', code: err.code, message: err.message, ...(err.attributed ? { attributed: { ...err.attributed } } : {}) };
  if (err instanceof KeyError) return { kind: 'key', code: err.code, message: err.message };
  if (err instanceof TypeError) return { kind: 'type', message: err.message };
  return { kind: 'other', message: err instanceof Error ? err.message : 'crypto worker failed' };
}

const data = workerData as CryptoWorkerData;
// Each thread has its own SubtleCrypto object: installed here, before the keys load.
if (data.inline) installInlineSubtle();
const ready: Promise<RelayCrypto> = loadServiceKeys({ dir: data.keysDir, passphrase: data.passphrase }).then((keys) => localCrypto(keys, data.limits));
// Reported by the first task (the pool's `ready` probe), not as an unhandled rejection.
ready.catch(() => {});
// Each worker is its own V8 isolate with its own page pool: its pages go back once idle too.
startMemoryReducerNudge();

/** Runs one task on this worker's keys (piscina's entry point). */
export default async function run(task: CryptoTask): Promise<CryptoReply> {
  try {
    const crypto = await ready;
    switch (task.op) {
      case 'ready':
        return { ok: true, value: true };
      case 'seal':
        return { ok: true, value: await crypto.seal(task.envelope) };
      case 'open':
        return { ok: true, value: await crypto.open(task.armored, { queue: task.queue, ...(task.now === undefined ? {} : { now: new Date(task.now) }) }) };
      default:
        throw new TypeError('crypto worker: unknown task');
    }
  } catch (err) {
    return { ok: false, error: serializeError(err) };
  }
}
