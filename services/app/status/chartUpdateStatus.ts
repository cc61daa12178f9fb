import type { Logger } from 'pino';
import type { ApplyReceipt } from '../../core/receipts/receipts.ts';
import type { Outbound } from '../../core/relay/outbound.ts';
import { createStatusStore, type StatusRecord } from '../../core/state/statusStore.ts';
import type { StateTable } from '../../core/state/table.ts';

/** Where a chart update stands, as the app knows it. */
export type ChartUpdateStatus = 'accepted' | 'queued' | 'failed' | 'delivered';

/** Each chart update status's place: `delivered` outranks `failed` (a dead-lettered update redriven and delivered). */
export const CHART_UPDATE_RANKS: Readonly<Record<ChartUpdateStatus, number>> = { accepted: 0, queued: 1, failed: 2, delivered: 3 };

/** The app's record of chart updates (items `chart-update#<envelope id>`). */
export interface ChartUpdateStatusTracker {
  /** Applies an interface receipt: `delivered` (EMR status or ACK code) or `failed` (reason). */
  applyReceipt: ApplyReceipt;
  /** The record of `id`, or undefined (unknown or expired). */
  get(id: string): Promise<StatusRecord | undefined>;
  /** Whether chart update `id` is on its way: its status reached `queued` (what settles its Idempotency-Key claim). */
  sent(id: string): Promise<boolean>;
  /** The outbound path of chart updates, recording `accepted` before the send and `queued` after it. */
  track(outbound: Outbound): Outbound;
}

/** Creates the chart update status tracker on the app's state table. */
export function createChartUpdateStatus(options: { table: StateTable; ttlSeconds: number; logger: Logger }): ChartUpdateStatusTracker {
  const store = createStatusStore<ChartUpdateStatus>({ table: options.table, prefix: 'chart-update', ranks: CHART_UPDATE_RANKS, ttlSeconds: options.ttlSeconds });
  return {
    async applyReceipt(receipt, _from, receiptId) {
      const status: ChartUpdateStatus = receipt.status === 'delivered' ? 'delivered' : 'failed';
      const facts = {
        ...(receipt.reasonCode ? { reasonCode: receipt.reasonCode } : {}),
        ...(receipt.emrStatus === undefined ? {} : { emrStatus: receipt.emrStatus }),
        ...(receipt.ackCode ? { ackCode: receipt.ackCode } : {}),
      };
      return store.record(receipt.ref, status, facts, new Date(receipt.at), receiptId);
    },
    get: (id) => store.get(id),
    sent: (id) => store.reached(id, 'queued'),
    track(outbound) {
      const recordQueued = async (id: string): Promise<void> => {
        try {
          await store.record(id, 'queued');
        } catch (err) {
          // The update is on its way; its receipt still moves the record on.
          options.logger.warn({ envelopeId: id, code: (err as { name?: string }).name }, 'could not record the queued status');
        }
      };
      return {
        async send(payload, beforeSend, afterSend) {
          if (payload.kind !== 'chart.update' || !payload.id) return outbound.send(payload, beforeSend, afterSend);
          const { id: decided, actor } = payload;
          // `accepted` is written while the update is sealed; nothing is sent unless it was. `queued`
          // is written while the send's audit lines are.
          return outbound.send(
            payload,
            async () => {
              await Promise.all([store.begin(decided, actor, 'accepted'), beforeSend?.()]);
            },
            async (id) => {
              await Promise.all([recordQueued(id), afterSend?.(id)]);
            },
          );
        },
        recordCopy: (copy) => outbound.recordCopy(copy),
      };
    },
  };
}
