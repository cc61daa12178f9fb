// The values the queue operations take and give: what a caller injects, and metadata of held messages (never a body).
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { AuditSink } from '../audit/types.ts';
import type { ResolvedQueue } from '../transport/queues.ts';

/** Where a message is held aside: the dead-letter queue or the quarantine queue of a logical queue. */
export type HoldRole = 'dlq' | 'quarantine';

/** The two hold roles, in display order. */
export const HOLD_ROLES: readonly HoldRole[] = ['dlq', 'quarantine'];

/** Reason shown for a DLQ message that SQS moved there by the redrive policy (it carries no `cr-reason`). */
export const REASON_MAX_RECEIVES = 'max-receives';

/** What every queue operation is given (dependency injection: a running service passes its own). */
export interface OpsDeps {
  /** The SQS client. */
  client: SQSClient;
  /** The service's resolved queues, by logical name (`resolveQueues`, or the runtime's). */
  queues: Readonly<Record<string, ResolvedQueue>>;
}

/** Metadata of one held (DLQ or quarantine) message: ids, codes and times only, never the body. */
export interface HeldMessageInfo {
  /** The logical queue it belongs to. */
  queue: string;
  /** DLQ or quarantine. */
  role: HoldRole;
  /** SQS message id in the hold queue. */
  messageId: string;
  /** `cr-envelope-id` when it is a well-formed UUID. */
  envelopeId: string | null;
  /** `cr-reason` (a code), or {@link REASON_MAX_RECEIVES} for a DLQ message SQS moved there. */
  reason: string;
  /** `cr-signer`, the signer's primary-key fingerprint as claimed in the clear (upper-case hex), when well-formed. */
  signer: string | null;
  /** When SQS first accepted the message (ISO 8601), when reported. */
  sentAt: string | null;
  /** When it was first received (SQS ApproximateFirstReceiveTimestamp, ISO 8601), when reported. */
  firstReceiveAt: string | null;
  /** When the relay last received it and set it aside (`cr-quarantined-at` / `cr-dead-lettered-at`), when recorded. */
  lastReceiveAt: string | null;
  /** Receives SQS counts, not counting the inspection that produced this entry. */
  receiveCount: number;
  /** FIFO message group, when the queue is FIFO. */
  groupId: string | null;
}

/** Depth of one physical queue (SQS approximate counts). */
export interface QueueDepthInfo {
  /** Waiting to be received. */
  visible: number;
  /** Received and not yet deleted (held by a consumer). */
  inFlight: number;
  /** Sent with a delay that has not passed. */
  delayed: number;
  /**
   * Age of the oldest message in seconds: measured for DLQ and quarantine (from the inspection),
   * null for a main queue (SQS cannot say without receiving, which would disturb the consumer).
   */
  oldestAgeSeconds: number | null;
}

/** Status of one logical queue with its DLQ and quarantine queue. */
export interface QueueStatus {
  /** Logical queue name. */
  queue: string;
  /** Physical name of the main queue. */
  name: string;
  /** FIFO queues. */
  fifo: boolean;
  /** The main queue. */
  main: QueueDepthInfo;
  /** Its dead-letter queue, with held messages counted by reason. */
  dlq: QueueDepthInfo & { byReason: Record<string, number> };
  /** Its quarantine queue, with held messages counted by reason code. */
  quarantine: QueueDepthInfo & { byReason: Record<string, number> };
  /** True when the counts by reason do not cover every message a hold queue held (see `partialReason`). */
  partial: boolean;
  /**
   * Why they do not: `limit` when a hold queue held more messages than the inspection limit;
   * `unreachable` when the inspection ended before reading as many as the queue held (on a FIFO
   * queue, messages behind the first of their group; messages hidden by another reader); null when complete.
   */
  partialReason: 'limit' | 'unreachable' | null;
}

/** How far a read of a hold queue got, against what the queue held when it began. */
export interface ScanCoverage {
  /** Messages looked at. */
  scanned: number;
  /** Approximate number of messages the hold queue held when the read began (visible, in flight, delayed). */
  heldAtStart: number;
  /** The read stopped because it reached its limit. */
  stoppedAtLimit: boolean;
  /**
   * The read ended before looking at as many messages as the queue held at the start, without
   * reaching its limit: the rest could not be reached (on a FIFO queue, messages behind others of
   * their group that stay in place; messages hidden by another reader).
   */
  partial: boolean;
}

/** Which held messages an action applies to; every given filter must match. */
export interface HeldSelection {
  /** Envelope ids or SQS message ids; absent = any. */
  ids?: readonly string[];
  /** Reason codes; absent = any. */
  reasons?: readonly string[];
}

/** Progress of a long action, reported after each message (and once at the start). */
export interface OpsProgress {
  /** Messages looked at so far. */
  scanned: number;
  /** Messages that matched the selection so far. */
  matched: number;
  /** Messages acted on (or, dry run, that would be). */
  done: number;
  /** Messages whose action failed. */
  failed: number;
  /** Approximate number of messages in the hold queue at the start (for a progress bar). */
  total: number;
}

/** Options of {@link redriveHeld} and {@link purgeHeld}. */
export interface HeldActionOptions extends HeldSelection {
  /** Logical queue. */
  queue: string;
  /** DLQ or quarantine. */
  role: HoldRole;
  /** Report what would be done; change nothing and audit nothing. */
  dryRun?: boolean;
  /** Where the audit line of each message acted on goes. */
  audit: AuditSink;
  /** Who acts (an admin's name, `cli:<user>`): the audit `actor`. */
  actor: string;
  /** Source address of the request, when there is one (the console). */
  sourceIp?: string;
  /** Called with the progress after each message. */
  onProgress?: (progress: OpsProgress) => void;
  /** Stop after this many messages looked at; default 10 000. */
  limit?: number;
  /**
   * Act only on these SQS message ids (what a confirmation listed): a message that matches the
   * selection but is not among them (it arrived after the preview) is left alone and counted in
   * `skippedNewer`.
   */
  messageIds?: readonly string[];
  /** How long each message looked at stays hidden while the run goes on, seconds (default 300; extended as long as the run lasts). */
  holdSeconds?: number;
  /** Abort the run between messages (what was done stays done and audited). */
  signal?: AbortSignal;
}

/** One message an action applied to (or, dry run, would). */
export interface HeldActionItem {
  /** SQS message id in the hold queue. */
  messageId: string;
  /** Envelope id, when well-formed. */
  envelopeId: string | null;
  /** Reason it was held. */
  reason: string;
  /** `done` (or `would` in a dry run), or `failed` with an SQS error code. */
  outcome: 'done' | 'would' | 'failed';
  /** The error code when failed. */
  code?: string;
}

/** The result of an action. */
export interface HeldActionResult extends ScanCoverage {
  /** `redrive` or `purge`. */
  action: 'redrive' | 'purge';
  /** Logical queue. */
  queue: string;
  /** DLQ or quarantine. */
  role: HoldRole;
  /** Whether it was a dry run. */
  dryRun: boolean;
  /** One entry per matching message. */
  items: HeldActionItem[];
  /** Messages that matched the selection but were left alone as newer than the run or its confirmation (not among `messageIds`, or sent after the run began). */
  skippedNewer: number;
}
