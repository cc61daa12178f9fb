// Reading what a DLQ or quarantine queue holds, and the depth of a service's queues: metadata only.
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { errorCode } from '../transport/errors.ts';
import { OpsError } from './errors.ts';
import { holdQueue, scanHeld } from './heldScan.ts';
import type { HeldMessageInfo, HoldRole, OpsDeps, QueueDepthInfo, QueueStatus, ScanCoverage } from './types.ts';

/** Largest number of messages one inspection reads. */
export const MAX_INSPECT = 10_000;

/** Options of {@link listHeld}. */
export interface ListHeldOptions {
  /** Logical queue. */
  queue: string;
  /** DLQ or quarantine. */
  role: HoldRole;
  /** At most this many messages (1 to {@link MAX_INSPECT}); default 100. */
  limit?: number;
  /** Stops the inspection. */
  signal?: AbortSignal;
}

function checkLimit(limit: number | undefined, fallback: number): number {
  const n = limit ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > MAX_INSPECT) throw new OpsError('CR_OPS_INVALID_OPTION', `limit: expected an integer from 1 to ${MAX_INSPECT}, got ${String(limit)}`);
  return n;
}

/** What {@link inspectHeld} read: the messages, oldest first, and how far it got. */
export interface HeldInspection extends ScanCoverage {
  /** The held messages read (metadata only), oldest first. */
  messages: HeldMessageInfo[];
}

async function depthOf(deps: OpsDeps, url: string, label: string, signal: AbortSignal | undefined): Promise<number> {
  const d = await queueDepth(deps.client, url, label, signal);
  return d.visible + d.inFlight + d.delayed;
}

/**
 * Reads the messages held in a logical queue's DLQ or quarantine queue, oldest first: each is
 * received (hidden while the inspection runs, its receive count goes up by one) and made
 * visible again at the end. Metadata only: the body is never returned. Says how far it got
 * against the queue's depth at the start (on a FIFO queue a message group is handed out in
 * order, so messages behind the first of their group may be out of reach).
 */
export async function inspectHeld(deps: OpsDeps, options: ListHeldOptions): Promise<HeldInspection> {
  const limit = checkLimit(options.limit, 100);
  const { url, queue } = holdQueue(deps.queues, options.queue, options.role);
  const heldAtStart = await depthOf(deps, url, `${queue.logical} ${options.role}`, options.signal);
  const scan = scanHeld(deps.client, url, queue.logical, options.role, { limit, visibilitySeconds: 60, fifo: queue.fifo, ...(options.signal ? { signal: options.signal } : {}) });
  const out: HeldMessageInfo[] = [];
  try {
    for (let batch = await scan.next(); batch.length > 0; batch = await scan.next()) out.push(...batch.map((m) => m.info));
  } finally {
    await scan.release();
  }
  const messages = out.sort((a, b) => (a.sentAt ?? '').localeCompare(b.sentAt ?? ''));
  return { messages, scanned: messages.length, heldAtStart, stoppedAtLimit: scan.stoppedAtLimit, partial: !scan.stoppedAtLimit && messages.length < heldAtStart };
}

/** The messages held in a DLQ or quarantine queue, oldest first (as {@link inspectHeld}, without the coverage). */
export async function listHeld(deps: OpsDeps, options: ListHeldOptions): Promise<HeldMessageInfo[]> {
  return (await inspectHeld(deps, options)).messages;
}

/**
 * One held message by envelope id or SQS message id; throws CR_OPS_MESSAGE_NOT_FOUND when it is
 * not there, saying so when the search could not read every held message.
 */
export async function showHeld(deps: OpsDeps, options: { queue: string; role: HoldRole; id: string; signal?: AbortSignal }): Promise<HeldMessageInfo> {
  const id = options.id.toLowerCase();
  const { url, queue } = holdQueue(deps.queues, options.queue, options.role);
  const heldAtStart = await depthOf(deps, url, `${queue.logical} ${options.role}`, options.signal);
  const scan = scanHeld(deps.client, url, queue.logical, options.role, { limit: MAX_INSPECT, visibilitySeconds: 60, fifo: queue.fifo, ...(options.signal ? { signal: options.signal } : {}) });
  let scanned = 0;
  try {
    for (let batch = await scan.next(); batch.length > 0; batch = await scan.next()) {
      scanned += batch.length;
      const hit = batch.find((m) => m.info.envelopeId === id || m.info.messageId.toLowerCase() === id);
      if (hit) return hit.info;
    }
  } finally {
    await scan.release();
  }
  const shown = /^[0-9a-zA-Z-]{1,80}$/.test(options.id) ? options.id : '(invalid id)';
  const short = scanned < heldAtStart ? `; only ${scanned} of about ${heldAtStart} held message(s) could be read${queue.fifo ? ' (on a FIFO queue, messages behind the first of their group are out of reach)' : ' (others are hidden by another reader)'}` : '';
  throw new OpsError('CR_OPS_MESSAGE_NOT_FOUND', `no message ${shown} in the ${options.role} of ${queue.logical}${short}`);
}

const DEPTH = ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'] as const;

/** The approximate depth of one queue (GetQueueAttributes). */
export async function queueDepth(client: SQSClient, url: string, label: string, signal?: AbortSignal): Promise<Omit<QueueDepthInfo, 'oldestAgeSeconds'>> {
  try {
    const res = await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: [...DEPTH] }), signal ? { abortSignal: signal } : {});
    const a = res.Attributes ?? {};
    const n = (name: (typeof DEPTH)[number]): number => Number(a[name] ?? 0) || 0;
    return { visible: n('ApproximateNumberOfMessages'), inFlight: n('ApproximateNumberOfMessagesNotVisible'), delayed: n('ApproximateNumberOfMessagesDelayed') };
  } catch (err) {
    throw new OpsError('CR_OPS_SQS_FAILED', `cannot read the depth of ${label} (${errorCode(err)})`, { cause: err });
  }
}

/** Options of {@link queueStatus}. */
export interface QueueStatusOptions {
  /** Messages read per hold queue to count reasons and find the oldest (default 1000). */
  inspectLimit?: number;
  /** Clock (tests). */
  now?: () => number;
  /** Stops the reads. */
  signal?: AbortSignal;
}

/**
 * Status of every queue of the service: depths of each main queue, DLQ and quarantine queue;
 * for the two hold queues also counts by reason and the oldest message's age, from an
 * inspection (as {@link listHeld}: their messages are briefly hidden, their receive count goes up).
 */
export async function queueStatus(deps: OpsDeps, options: QueueStatusOptions = {}): Promise<QueueStatus[]> {
  const limit = checkLimit(options.inspectLimit, 1000);
  const now = options.now ?? Date.now;
  return Promise.all(
    Object.values(deps.queues).map(async (q) => {
      const [main, dlqDepth, quarantineDepth] = await Promise.all([
        queueDepth(deps.client, q.url, q.name, options.signal),
        queueDepth(deps.client, q.dlqUrl, `${q.logical} dlq`, options.signal),
        queueDepth(deps.client, q.quarantineUrl, `${q.logical} quarantine`, options.signal),
      ]);
      let partialReason: QueueStatus['partialReason'] = null;
      const hold = async (role: HoldRole, depth: Omit<QueueDepthInfo, 'oldestAgeSeconds'>) => {
        const byReason: Record<string, number> = {};
        if (depth.visible + depth.inFlight + depth.delayed === 0) return { ...depth, oldestAgeSeconds: 0, byReason };
        const read = await inspectHeld(deps, { queue: q.logical, role, limit, ...(options.signal ? { signal: options.signal } : {}) });
        const held = read.messages;
        // Out of reach is the graver: raising --limit would not help.
        if (read.partial) partialReason = 'unreachable';
        else if (read.stoppedAtLimit && partialReason === null) partialReason = 'limit';
        let oldest: number | undefined;
        for (const m of held) {
          byReason[m.reason] = (byReason[m.reason] ?? 0) + 1;
          const sent = m.sentAt ? Date.parse(m.sentAt) : undefined;
          if (sent !== undefined && (oldest === undefined || sent < oldest)) oldest = sent;
        }
        return { ...depth, oldestAgeSeconds: oldest === undefined ? (held.length > 0 ? null : 0) : Math.max(0, Math.round((now() - oldest) / 1000)), byReason };
      };
      const [dlq, quarantine] = await Promise.all([hold('dlq', dlqDepth), hold('quarantine', quarantineDepth)]);
      return { queue: q.logical, name: q.name, fifo: q.fifo, main: { ...main, oldestAgeSeconds: null }, dlq, quarantine, partial: partialReason !== null, partialReason };
    }),
  );
}
