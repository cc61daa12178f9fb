import type { Logger } from 'pino';
import type { Receipt } from '../../core/receipts/receipt.ts';
import type { ApplyReceipt, ApplyReceiptsInTurn } from '../../core/receipts/receipts.ts';
import { createStatusStore, type StatusRecord, type StatusResult } from '../../core/state/statusStore.ts';
import type { StateTable } from '../../core/state/table.ts';
import type { SubmissionStatus, SubmissionStatusEvents } from './events.ts';

/** Each submission status's place: a step moves the status only forward (acknowledged outranks a late rejection). */
export const SUBMISSION_RANKS: Readonly<Record<SubmissionStatus, number>> = { accepted: 0, queued: 1, held: 2, rejected: 3, 'dead-lettered': 3, acknowledged: 4 };

/** The interface's record of partner submissions (items `submission#<envelope id>`), publishing each change. */
export interface SubmissionStatusTracker {
  /** Records `accepted` (before the send): the record is the partner's from now on. */
  accepted(id: string, partner: string): Promise<void>;
  /** Records `queued` once SQS took it; a failure is logged, never the request's (the submission is on its way). */
  queued(id: string): Promise<void>;
  /** Applies an app receipt: `held`, `acknowledged`, `rejected` (quarantined) or `dead-lettered`. */
  applyReceipt: ApplyReceipt;
  /** Applies the app's receipts about one submission in one write when each moves it in turn (`held` then `acknowledged`). */
  applyInTurn: ApplyReceiptsInTurn;
  /** The partner's own record of `id`, or undefined (unknown, expired, or another partner's). */
  get(id: string, partner: string): Promise<StatusRecord | undefined>;
  /** Whether submission `id` is on its way: its status reached `queued` (what settles its Idempotency-Key claim). */
  sent(id: string): Promise<boolean>;
}

/** Options for {@link createSubmissionStatus}. */
export interface SubmissionStatusOptions {
  /** The interface's state table. */
  table: StateTable;
  /** How long a record is kept, seconds (the queue retention). */
  ttlSeconds: number;
  /** Where every change is published (partner callbacks listen there). */
  events: SubmissionStatusEvents;
  /** Service logger. */
  logger: Logger;
}

/** The submission step an app receipt reports: its status, reason code, time, and the receipt's id. */
function stepOf(receipt: Receipt, receiptId: string): { status: SubmissionStatus; facts: { reasonCode?: string }; at: Date; by: string } {
  const status: SubmissionStatus =
    receipt.status === 'rejected' ? (receipt.disposition === 'dead-lettered' ? 'dead-lettered' : 'rejected') : receipt.status === 'held' || receipt.status === 'acknowledged' ? receipt.status : 'rejected';
  return { status, facts: receipt.reasonCode ? { reasonCode: receipt.reasonCode } : {}, at: new Date(receipt.at), by: receiptId };
}

/** Creates the submission status tracker; only changes that move a status forward are published. */
export function createSubmissionStatus(options: SubmissionStatusOptions): SubmissionStatusTracker {
  const store = createStatusStore<SubmissionStatus>({ table: options.table, prefix: 'submission', ranks: SUBMISSION_RANKS, ttlSeconds: options.ttlSeconds });
  const publish = (submissionId: string, status: SubmissionStatus, result: StatusResult, at: Date, reasonCode?: string): void => {
    if (result.change !== 'moved' || result.owner === undefined) return;
    options.events.publish({ submissionId, partner: result.owner, status, at: at.toISOString(), ...(reasonCode ? { reasonCode } : {}) });
  };
  return {
    async accepted(id, partner) {
      const at = new Date();
      const change = await store.begin(id, partner, 'accepted', at);
      publish(id, 'accepted', { change, owner: partner }, at);
    },
    async queued(id) {
      const at = new Date();
      try {
        publish(id, 'queued', await store.record(id, 'queued', {}, at), at);
      } catch (err) {
        options.logger.warn({ envelopeId: id, code: (err as { name?: string }).name }, 'could not record the queued status');
      }
    },
    async applyReceipt(receipt, _from, receiptId) {
      const step = stepOf(receipt, receiptId);
      const result = await store.record(receipt.ref, step.status, step.facts, step.at, step.by);
      publish(receipt.ref, step.status, result, step.at, step.facts.reasonCode);
      return result;
    },
    async applyInTurn(carried) {
      const ref = carried[0]?.receipt.ref;
      // One record per write: receipts about different submissions are never written together.
      if (ref === undefined || carried.some((c) => c.receipt.ref !== ref)) return undefined;
      const steps = carried.map((c) => stepOf(c.receipt, c.id));
      const result = await store.recordInTurn(ref, steps);
      if (result) for (const step of steps) publish(ref, step.status, result, step.at, step.facts.reasonCode);
      return result;
    },
    async get(id, partner) {
      const record = await store.get(id);
      return record && record.owner === partner ? record : undefined;
    },
    sent: (id) => store.reached(id, 'queued'),
  };
}
