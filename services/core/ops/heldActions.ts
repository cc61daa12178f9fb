// Redrive (back to the main queue) and purge (delete) of held DLQ or quarantine messages, one
// audit line per message acted on. A redriven message is the one that was held, byte for byte,
// with its wire attributes: the receiving consumer opens and checks it again like any other.
import { deleteMessageBatch, copyAttributes, forwardMessage } from '../transport/messageOps.ts';
import { ATTR_DEAD_LETTERED_AT, ATTR_QUARANTINED_AT, ATTR_REASON, ATTR_SOURCE_QUEUE, type SqsAttributes } from '../transport/attributes.ts';
import { fifoGroupOf, type ResolvedQueue } from '../transport/queues.ts';
import type { AuditEvent } from '../audit/types.ts';
import { OpsError } from './errors.ts';
import { holdQueue, scanHeld, type ScannedMessage } from './heldScan.ts';
import { MAX_INSPECT, queueDepth } from './inspect.ts';
import type { HeldActionItem, HeldActionOptions, HeldActionResult, HeldSelection, OpsDeps, OpsProgress } from './types.ts';

/** Annotations the relay adds when it sets a message aside; a redriven message goes back without them. */
const HOLD_ANNOTATIONS = [ATTR_REASON, ATTR_SOURCE_QUEUE, ATTR_QUARANTINED_AT, ATTR_DEAD_LETTERED_AT];

const ID = /^[0-9a-zA-Z-]{1,80}$/;
const REASON = /^[A-Za-z0-9_.:-]{1,80}$/;

/** Checks a selection where it enters: ids and reasons are codes, never free text. */
export function checkSelection(selection: HeldSelection & { messageIds?: readonly string[] }): void {
  for (const id of selection.ids ?? []) if (!ID.test(id)) throw new OpsError('CR_OPS_INVALID_OPTION', 'ids: expected envelope ids or SQS message ids (letters, digits, dashes)');
  for (const r of selection.reasons ?? []) if (!REASON.test(r)) throw new OpsError('CR_OPS_INVALID_OPTION', 'reason: expected a reason code such as CR_ENVELOPE_SIGNATURE_INVALID');
  for (const id of selection.messageIds ?? []) if (!ID.test(id)) throw new OpsError('CR_OPS_INVALID_OPTION', 'messageIds: expected SQS message ids (letters, digits, dashes)');
  if (selection.ids?.length === 0) throw new OpsError('CR_OPS_INVALID_OPTION', 'ids: expected at least one id');
  if (selection.reasons?.length === 0) throw new OpsError('CR_OPS_INVALID_OPTION', 'reason: expected at least one reason code');
  if (selection.messageIds?.length === 0) throw new OpsError('CR_OPS_INVALID_OPTION', 'messageIds: expected at least one SQS message id');
}

/** True when a held message matches every given filter of the selection. */
export function matches(m: ScannedMessage['info'], selection: HeldSelection): boolean {
  if (selection.ids && !selection.ids.some((id) => id.toLowerCase() === m.envelopeId || id === m.messageId)) return false;
  if (selection.reasons && !selection.reasons.includes(m.reason)) return false;
  return true;
}

/** The attributes a redriven message is sent with: its own, without the hold annotations. */
export function redriveAttributes(attributes: SqsAttributes): SqsAttributes {
  const out = copyAttributes(attributes);
  for (const name of HOLD_ANNOTATIONS) delete out[name];
  return out;
}

type Act = (deps: OpsDeps, m: ScannedMessage, ctx: { url: string; queue: ResolvedQueue }) => Promise<{ ok: true } | { ok: false; code: string }>;

async function deleteHeld(deps: OpsDeps, m: ScannedMessage, url: string): Promise<{ ok: true } | { ok: false; code: string }> {
  let result: { ok: true } | { ok: false; code: string } = { ok: false, code: 'unknown' };
  await deleteMessageBatch(deps.client, url, [m.handle], (_, r) => (result = r));
  return result;
}

const redriveOne: Act = async (deps, m, ctx) => {
  const id = m.info.envelopeId ?? m.info.messageId;
  const sent = await forwardMessage(deps.client, {
    queueUrl: ctx.queue.url,
    body: m.body,
    attributes: redriveAttributes(m.attributes),
    // A new deduplication id: the original's (the envelope id) may still be inside the 5-minute
    // window, and SQS would then drop the redriven copy while answering success.
    ...(ctx.queue.fifo ? { fifo: { groupId: m.info.groupId ?? fifoGroupOf(ctx.queue, id), deduplicationId: `${id}-r-${m.info.messageId}`.slice(0, 128) } } : {}),
  });
  // Sent before deleted: a failed delete leaves a copy in the hold queue, never a loss (the
  // receiver recognises the envelope id if both are redriven).
  return sent.ok ? deleteHeld(deps, m, ctx.url) : sent;
};

const purgeOne: Act = (deps, m, ctx) => deleteHeld(deps, m, ctx.url);

/** Longest hold of a message looked at by an action (the SQS maximum visibility timeout). */
const MAX_HOLD_SECONDS = 43_200;

async function runAction(deps: OpsDeps, options: HeldActionOptions, action: 'redrive' | 'purge', act: Act): Promise<HeldActionResult> {
  checkSelection(options);
  const limit = options.limit ?? MAX_INSPECT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_INSPECT) throw new OpsError('CR_OPS_INVALID_OPTION', `limit: expected an integer from 1 to ${MAX_INSPECT}`);
  const holdSeconds = options.holdSeconds ?? 300;
  if (!Number.isInteger(holdSeconds) || holdSeconds < 1 || holdSeconds > MAX_HOLD_SECONDS) throw new OpsError('CR_OPS_INVALID_OPTION', `holdSeconds: expected an integer from 1 to ${MAX_HOLD_SECONDS}`);
  const { url, queue } = holdQueue(deps.queues, options.queue, options.role);
  const dryRun = options.dryRun ?? false;
  const depth = await queueDepth(deps.client, url, `${queue.logical} ${options.role}`, options.signal);
  const heldAtStart = depth.visible + depth.inFlight + depth.delayed;
  const progress: OpsProgress = { scanned: 0, matched: 0, done: 0, failed: 0, total: heldAtStart };
  options.onProgress?.({ ...progress });
  const items: HeldActionItem[] = [];
  const scan = scanHeld(deps.client, url, queue.logical, options.role, { limit, visibilitySeconds: holdSeconds, fifo: queue.fifo, ...(options.signal ? { signal: options.signal } : {}) });
  const ctx = { url, queue };
  // Only what was held when the run began: a redriven message that fails again comes back as a
  // new copy, which this run must not redrive again (it would go round for ever). With
  // messageIds, only what the operator confirmed: nothing that arrived while the prompt waited.
  const startedAt = Date.now();
  const confirmed = options.messageIds ? new Set(options.messageIds) : undefined;
  const acted = new Set<string>();
  const arrivedLater = (m: ScannedMessage): boolean =>
    (m.info.envelopeId !== null && acted.has(m.info.envelopeId)) || (m.info.sentAt !== null && Date.parse(m.info.sentAt) > startedAt) || (confirmed !== undefined && !confirmed.has(m.info.messageId));
  let skippedNewer = 0;
  try {
    for (let batch = await scan.next(); batch.length > 0; batch = await scan.next()) {
      for (const m of batch) {
        progress.scanned++;
        if (!matches(m.info, options)) {
          options.onProgress?.({ ...progress });
          continue;
        }
        if (arrivedLater(m)) {
          skippedNewer++;
          options.onProgress?.({ ...progress });
          continue;
        }
        progress.matched++;
        if (m.info.envelopeId !== null) acted.add(m.info.envelopeId);
        const base = { messageId: m.info.messageId, envelopeId: m.info.envelopeId, reason: m.info.reason };
        if (dryRun) {
          progress.done++;
          items.push({ ...base, outcome: 'would' });
        } else {
          // A long run keeps the messages it leaves in place hidden, so it never meets them again.
          await scan.keepAlive();
          const r = await act(deps, m, ctx);
          if (r.ok) {
            scan.settled(m.handle);
            progress.done++;
          } else progress.failed++;
          items.push(r.ok ? { ...base, outcome: 'done' } : { ...base, outcome: 'failed', code: r.code });
          await options.audit.record(auditEvent(action, options, m, r));
        }
        options.onProgress?.({ ...progress });
      }
    }
  } finally {
    await scan.release();
  }
  const scanned = progress.scanned;
  return {
    action,
    queue: queue.logical,
    role: options.role,
    dryRun,
    scanned,
    heldAtStart,
    stoppedAtLimit: scan.stoppedAtLimit,
    partial: !scan.stoppedAtLimit && scanned < heldAtStart,
    items,
    skippedNewer,
  };
}

function auditEvent(action: 'redrive' | 'purge', options: HeldActionOptions, m: ScannedMessage, r: { ok: true } | { ok: false; code: string }): AuditEvent {
  return {
    action: action === 'redrive' ? 'message.redriven' : 'message.purged',
    actor: options.actor,
    resourceType: 'envelope',
    resourceId: m.info.envelopeId ?? m.info.messageId,
    outcome: r.ok ? 'success' : 'failure',
    ...(options.sourceIp ? { sourceIp: options.sourceIp } : {}),
    details: { queue: m.info.queue, from: options.role, reason: m.info.reason, messageId: m.info.messageId, ...(r.ok ? {} : { code: r.code }) },
  };
}

/**
 * Moves the selected held messages of a logical queue's DLQ or quarantine queue back to its
 * main queue: same body and wire attributes (hold annotations removed), on FIFO queues the same
 * message group and a fresh deduplication id; sent first, then deleted from the hold queue.
 * A redriven quarantined message is opened and checked again by the consumer (and quarantined
 * again if it still fails). Audits `message.redriven` per message acted on (not in a dry run).
 */
export function redriveHeld(deps: OpsDeps, options: HeldActionOptions): Promise<HeldActionResult> {
  return runAction(deps, options, 'redrive', redriveOne);
}

/** Deletes the selected held messages; audits `message.purged` per message acted on (not in a dry run). */
export function purgeHeld(deps: OpsDeps, options: HeldActionOptions): Promise<HeldActionResult> {
  return runAction(deps, options, 'purge', purgeOne);
}
