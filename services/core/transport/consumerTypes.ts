import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import type { AuditSink } from '../audit/types.ts';
import type { Metrics } from '../metrics/registry.ts';
import type { SqsAttributes } from './attributes.ts';
import type { DedupeSet } from './dedupe.ts';
import type { ResolvedQueue } from './queues.ts';

/** A message as the handler sees it (the receipt handle stays inside the consumer). */
export interface ReceivedMessage {
  /** SQS message id. */
  messageId: string;
  /** The body as received (ciphertext); never log it. */
  body: string;
  /** The message attributes as received (`cr-version`, `cr-envelope-id`, `cr-signer`, ...). */
  attributes: SqsAttributes;
  /** `cr-envelope-id` when it is a well-formed UUID, else undefined (see checkWireAttributes). */
  envelopeId: string | undefined;
  /** How many times SQS has delivered it (1 on the first delivery). */
  receiveCount: number;
  /** When SQS accepted it, when known. */
  sentAt: Date | undefined;
  /** Logical queue name it came from. */
  queue: string;
  /**
   * Lets the consumer drop the ciphertext (body and attributes become empty) once the handler
   * knows it will only answer done or release; a later quarantine or dead-letter is turned into
   * a retry, since no copy can be made. Call it only after reading the body.
   */
  releaseBody?(): void;
}

/** What a handler decides; expected outcomes are values, not exceptions. */
export type HandlerResult =
  | { status: 'done'; onDeleted?: (deleted: boolean) => void }
  | { status: 'retry'; reason: string; afterSeconds?: number }
  | { status: 'quarantine'; reason: string }
  | { status: 'dead-letter'; reason: string }
  | { status: 'release' }
  /** The envelope's effect was already applied (found by its signed id): delete, audit as a duplicate. */
  | { status: 'duplicate' };

/** Processes one message; `signal` aborts when the consumer gives up on it (stop deadline). A throw counts as a transient retry. */
export type MessageHandler = (message: ReceivedMessage, signal: AbortSignal) => Promise<HandlerResult>;

/** Options for {@link createConsumer}. */
export interface ConsumerOptions {
  /** The SQS client. */
  client: SQSClient;
  /** The queue to receive from, as resolved once: its URL, logical name (logs, metric labels, audit), FIFO flag, DLQ (handler `dead-letter`) and quarantine queue. */
  queue: ResolvedQueue;
  /** Processes each message. */
  handler: MessageHandler;
  /** Service name: the audit actor; default `care-relay`. */
  service?: string;
  /** pino logger; silent by default. Bodies are never logged. */
  logger?: Logger;
  /** Metrics to update. */
  metrics?: Metrics;
  /** Audit sink for quarantine, dead-letter and duplicate events; default none. */
  audit?: AuditSink;
  /** Completed envelope ids; share one set between consumers of a service. Omit to skip duplicate recognition. */
  dedupe?: DedupeSet;
  /** Most messages held at once; when reached the consumer stops receiving (backpressure). Default 10. */
  maxInFlight?: number;
  /** Most messages per receive (1-10); default 10. Always 1 on an ordered FIFO queue (see FIFO_ORDERING). */
  batchSize?: number;
  /** Long-poll wait, seconds (0-20); default 20. */
  waitTimeSeconds?: number;
  /** Visibility timeout requested on receive and renewed by the heartbeat, seconds (1-43200); default 30. */
  visibilityTimeoutSeconds?: number;
  /** Heartbeat period, seconds (above 0, below the visibility timeout); default a third of the visibility timeout. */
  heartbeatIntervalSeconds?: number;
  /** Retry backoff: first delay, seconds; default 2. */
  retryBaseSeconds?: number;
  /** Retry backoff cap, seconds; default 300. */
  retryMaxSeconds?: number;
  /**
   * A `retry` of at most 900 s (SQS's longest delay) sends the message again as a new message, delayed by
   * the retry's wait (the same body and attributes; on a FIFO queue its group, a deduplication id of its
   * own and the wait as `cr-not-before`), and deletes the one received: SQS counts receives per message,
   * so retries do not count toward the queue's `maxReceiveCount`, whose redrive is left for messages that
   * stop their worker. If the new message cannot be sent the received one is hidden for the wait instead;
   * if the delete fails, both come back (the handler must be idempotent). For handlers that bound their
   * own retries and always give `afterSeconds` (the SMS redaction jobs' window); default false.
   */
  retryAsNewMessage?: boolean;
  /** Backoff after a failed receive: first delay, ms; default 500. */
  receiveErrorBaseMs?: number;
  /** Backoff cap after failed receives, ms; default 15000. */
  receiveErrorMaxMs?: number;
  /** How long a delete or visibility change waits for others to share its batch call, ms; 0 (default) = until the next turn of the event loop. */
  lingerMs?: number;
  /** Random source in [0, 1) for jitter; tests pass a fixed one. */
  random?: () => number;
}

/** A snapshot for health and readiness probes. */
export interface ConsumerHealth {
  /** Started and not stopped. */
  running: boolean;
  /** Receiving is paused. */
  paused: boolean;
  /** Messages held now. */
  inFlight: number;
  /** Receives that failed in a row (0 when the last one worked). */
  consecutiveReceiveErrors: number;
  /** Code of the last receive error, if the last receive failed. */
  lastReceiveError: string | undefined;
  /** Epoch ms of the last successful receive. */
  lastReceiveAt: number | undefined;
}

/** A running queue consumer. */
export interface Consumer {
  /** Starts receiving (and the heartbeat). */
  start(): void;
  /** Stops receiving (aborts the open long poll); held messages keep being processed. */
  pause(): void;
  /** Receives again after pause(). */
  resume(): void;
  /** Stops receiving, waits up to `deadlineMs` (default 30000) for held messages, then aborts their handlers and releases them. */
  stop(options?: { deadlineMs?: number }): Promise<void>;
  /** Messages held now. */
  readonly inFlightCount: number;
  /** Started and not stopped. */
  readonly isRunning: boolean;
  /** True when running and the last receive worked (for /readyz). */
  ready(): boolean;
  /** Probe details. */
  health(): ConsumerHealth;
}
