// Reading a DLQ or quarantine queue without consuming it: receive with a visibility timeout, keep
// every message hidden until the scan ends (so none is seen twice), then release the ones not acted on.
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
  /** How long each received message stays hidden while the scan runs, seconds (default 120). */
  visibilitySeconds?: number;
  /** Stop after this many messages. */
  limit: number;
  /** Long-poll wait of each receive, seconds (default 1: a short poll may miss messages on SQS). */
  waitSeconds?: number;
  /** Consecutive empty receives that end the scan (default 2). */
  emptyReceives?: number;
  /** Stops the scan between receives. */
  signal?: AbortSignal;
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
  /** Receives the next batch (empty when the scan is over). */
  next(): Promise<ScannedMessage[]>;
  /** Marks a message as settled (deleted): it is not released at the end. */
  settled(handle: string): void;
  /** Makes every message not settled visible again at once; failures are returned by handle. */
  release(): Promise<Map<string, string>>;
}

/** Starts scanning a hold queue (see the file comment). */
export function scanHeld(client: SQSClient, url: string, queue: string, role: HoldRole, options: ScanOptions): HeldScan {
  const visibility = options.visibilitySeconds ?? 120;
  const seen = new Set<string>();
  const held = new Set<string>();
  let count = 0;
  let empties = 0;
  let over = false;
  return {
    async next() {
      while (!over) {
        if (options.signal?.aborted || count >= options.limit) break;
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
          held.add(m.ReceiptHandle);
          // Seen again: its visibility ran out during a long scan; the scan has gone round.
          if (seen.has(m.MessageId)) {
            over = true;
            continue;
          }
          seen.add(m.MessageId);
          count++;
          fresh.push({ info: heldInfo(m, queue, role), handle: m.ReceiptHandle, body: m.Body, attributes: m.MessageAttributes ?? {} });
        }
        if (fresh.length > 0) {
          empties = 0;
          return fresh;
        }
        if (++empties >= (options.emptyReceives ?? 2)) break;
      }
      over = true;
      return [];
    },
    settled(handle) {
      held.delete(handle);
    },
    async release() {
      const handles = [...held];
      held.clear();
      return handles.length === 0 ? new Map() : changeVisibilityBatch(client, url, handles, 0);
    },
  };
}
