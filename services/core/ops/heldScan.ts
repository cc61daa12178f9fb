// Reading a DLQ or quarantine queue without consuming it: receive with a visibility timeout, keep
// every message hidden until the scan ends (its hold extended while the scan lasts, so none is
// returned twice), then release the ones not acted on.
import { ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { ATTR_DEAD_LETTERED_AT, ATTR_QUARANTINED_AT, ATTR_REASON, ATTR_SIGNER, attributeString, envelopeIdOf, type SqsAttributes } from '../transport/attributes.ts';
import { errorCode } from '../transport/errors.ts';
import { changeVisibilityBatch } from '../transport/messageOps.ts';
import type { ResolvedQueue } from '../transport/queues.ts';
import { OpsError } from './errors.ts';
import { REASON_MAX_RECEIVES, type HeldMessageInfo, type HoldRole } from './types.ts';

/** A received held message: its metadata plus what an action needs (handle, body, attributes); the body never leaves core/ops. */
export interface ScannedMessage {
  /** Metadata (what callers may show). */
  info: HeldMessageInfo;
  /** Receipt handle of this receive. */
  handle: string;
  /** The ciphertext as held; only ever copied back to the main queue. */
  body: string;
  /** The message attributes as held. */
  attributes: SqsAttributes;
}

/** Options of {@link scanHeld}. */
export interface ScanOptions {
  /** How long each received message stays hidden while the scan runs, seconds (default 120); extended while the scan lasts. */
  visibilitySeconds?: number;
  /** Stop after this many messages. */
  limit: number;
  /** Long-poll wait of each receive, seconds (default 1: a short poll may miss messages on SQS). */
  waitSeconds?: number;
  /** Consecutive receives bringing nothing new that end a pass (default 2). */
  emptyReceives?: number;
  /** A FIFO queue: after a pass in which messages were settled, the rest are released and read again (see {@link scanHeld}). */
  fifo?: boolean;
  /** Stops the scan between receives. */
  signal?: AbortSignal;
  /** Clock (tests). */
  now?: () => number;
}

const FINGERPRINT = /^[0-9A-F]{40}([0-9A-F]{24})?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The URL of a logical queue's hold queue; throws CR_OPS_INVALID_OPTION for an unknown queue. */
export function holdQueue(queues: Readonly<Record<string, ResolvedQueue>>, logical: string, role: HoldRole): { queue: ResolvedQueue; url: string } {
  const queue = Object.hasOwn(queues, logical) ? queues[logical] : undefined;
  if (!queue) throw new OpsError('CR_OPS_INVALID_OPTION', `queue: expected one of ${Object.keys(queues).join(', ')}, got "${logical.slice(0, 80)}"`);
  if (role !== 'dlq' && role !== 'quarantine') throw new OpsError('CR_OPS_INVALID_OPTION', `role: expected dlq or quarantine`);
  return { queue, url: role === 'dlq' ? queue.dlqUrl : queue.quarantineUrl };
}

function isoOf(ms: string | undefined): string | null {
  const n = Number(ms);
  return Number.isFinite(n) && n > 0 ? new Date(n).toISOString() : null;
}

function isoAttr(attributes: SqsAttributes, name: string): string | null {
  const t = Date.parse(attributeString(attributes, name) ?? '');
  return Number.isFinite(t) ? new Date(t).toISOString() : null;
}

/** Metadata of a received held message; every clear value is checked before it is shown (never free text). */
export function heldInfo(m: Message, queue: string, role: HoldRole): HeldMessageInfo {
  const attributes = m.MessageAttributes ?? {};
  const rawReason = attributeString(attributes, ATTR_REASON);
  const signer = attributeString(attributes, ATTR_SIGNER)?.toUpperCase();
  const group = m.Attributes?.MessageGroupId;
  return {
    queue,
    role,
    messageId: m.MessageId ?? '',
    envelopeId: envelopeIdOf(attributes) ?? null,
    reason: rawReason === undefined ? REASON_MAX_RECEIVES : /^[A-Za-z0-9_.:-]{1,80}$/.test(rawReason) ? rawReason : 'CR_REASON_INVALID',
    signer: signer !== undefined && FINGERPRINT.test(signer) ? signer : null,
    sentAt: isoOf(m.Attributes?.SentTimestamp),
    firstReceiveAt: isoOf(m.Attributes?.ApproximateFirstReceiveTimestamp),
    lastReceiveAt: isoAttr(attributes, role === 'quarantine' ? ATTR_QUARANTINED_AT : ATTR_DEAD_LETTERED_AT),
    receiveCount: Math.max(0, (Number(m.Attributes?.ApproximateReceiveCount ?? 1) || 1) - 1),
    // Groups are envelope ids or logical queue names (FIFO_ORDERING); anything else is not shown.
    groupId: group !== undefined && (UUID.test(group) || /^[a-z0-9-]{1,80}$/.test(group)) ? group : null,
  };
}

/** A scan in progress: the messages received so far stay hidden until `release`. */
export interface HeldScan {
  /** Receives the next batch of messages not seen before (empty when the scan is over). */
  next(): Promise<ScannedMessage[]>;
  /** Marks a message as settled (deleted): it is not released at the end. */
  settled(handle: string): void;
  /** Extends the hold of the messages received and not settled when a third of it has passed (a long run keeps them hidden). */
  keepAlive(): Promise<void>;
  /** Why the scan ended: `limit` when it reached `options.limit`, else `drained`. */
  readonly stoppedAtLimit: boolean;
  /** Makes every message not settled visible again at once; failures are returned by handle. */
  release(): Promise<Map<string, string>>;
}

/**
 * Starts scanning a hold queue (see the file comment). Every message received stays hidden (its
 * hold extended by {@link HeldScan.keepAlive} and at each receive) until `release`, so each is
 * returned once; one seen again (its hold ran out anyway) is held again, not returned twice.
 * A pass ends when `emptyReceives` receives in a row bring nothing new. On a FIFO queue SQS hands
 * out a message group in order and none of it while any of it is hidden, so messages behind ones
 * left in place are out of reach: when a pass settled (deleted) messages, the ones left are
 * released and a new pass reads the groups again from their heads, reaching further; a pass
 * that brings nothing new ends the scan (each further pass needs a message settled, so it ends).
 */
export function scanHeld(client: SQSClient, url: string, queue: string, role: HoldRole, options: ScanOptions): HeldScan {
  const visibility = options.visibilitySeconds ?? 120;
  const now = options.now ?? Date.now;
  const seen = new Set<string>();
  /** Receipt handle of each message held (not settled), by message id: the newest receive's. */
  const held = new Map<string, string>();
  const idOfHandle = new Map<string, string>();
  let count = 0;
  let empties = 0;
  let settledInPass = 0;
  let over = false;
  let extendedAt = now();
  let stoppedAtLimit = false;
  const hold = (messageId: string, handle: string): void => {
    const before = held.get(messageId);
    if (before !== undefined) idOfHandle.delete(before);
    held.set(messageId, handle);
    idOfHandle.set(handle, messageId);
  };
  const keepAlive = async (): Promise<void> => {
    if (now() - extendedAt < (visibility * 1000) / 3) return;
    extendedAt = now();
    // A failure (a handle gone stale) is not fatal: that message is seen again and held again.
    if (held.size > 0) await changeVisibilityBatch(client, url, [...held.values()], visibility);
  };
  const releaseAll = async (): Promise<Map<string, string>> => {
    const handles = [...held.values()];
    held.clear();
    idOfHandle.clear();
    return handles.length === 0 ? new Map() : changeVisibilityBatch(client, url, handles, 0);
  };
  return {
    get stoppedAtLimit() {
      return stoppedAtLimit;
    },
    async next() {
      while (!over) {
        if (options.signal?.aborted) break;
        if (count >= options.limit) {
          stoppedAtLimit = true;
          break;
        }
        await keepAlive();
        let messages: Message[];
        try {
          const res = await client.send(
            new ReceiveMessageCommand({
              QueueUrl: url,
              MaxNumberOfMessages: Math.min(10, options.limit - count),
              WaitTimeSeconds: options.waitSeconds ?? 1,
              VisibilityTimeout: visibility,
              MessageAttributeNames: ['All'],
              MessageSystemAttributeNames: ['ApproximateReceiveCount', 'ApproximateFirstReceiveTimestamp', 'SentTimestamp', 'MessageGroupId'],
            }),
            options.signal ? { abortSignal: options.signal } : {},
          );
          messages = res.Messages ?? [];
        } catch (err) {
          if (options.signal?.aborted) break;
          throw new OpsError('CR_OPS_SQS_FAILED', `cannot receive from the ${role} of ${queue} (${errorCode(err)})`, { cause: err });
        }
        const fresh: ScannedMessage[] = [];
        for (const m of messages) {
          if (!m.ReceiptHandle || !m.MessageId || m.Body === undefined) continue;
          hold(m.MessageId, m.ReceiptHandle);
          // Seen before (read again in a new pass, or its hold ran out): held again, not returned twice.
          if (seen.has(m.MessageId)) continue;
          seen.add(m.MessageId);
          count++;
          fresh.push({ info: heldInfo(m, queue, role), handle: m.ReceiptHandle, body: m.Body, attributes: m.MessageAttributes ?? {} });
        }
        if (fresh.length > 0) {
          empties = 0;
          return fresh;
        }
        if (++empties < (options.emptyReceives ?? 2)) continue;
        // The pass is over. On a FIFO queue, messages settled in it may have uncovered more of their groups.
        if (!options.fifo || settledInPass === 0 || held.size === 0) break;
        settledInPass = 0;
        empties = 0;
        await releaseAll();
      }
      over = true;
      return [];
    },
    settled(handle) {
      const id = idOfHandle.get(handle);
      if (id === undefined) return;
      idOfHandle.delete(handle);
      held.delete(id);
      settledInPass++;
    },
    keepAlive,
    release: releaseAll,
  };
}
