import type { AuditEvent } from '../../services/core/audit/types.ts';
import { receiptEffect, type ApplyReceipt } from '../../services/core/receipts/receipts.ts';
import type { StateTable } from '../../services/core/state/table.ts';
import { captureLogger } from './logs.ts';

/** The receipt effect of `service` over `table` that applies receipts with `apply`, auditing into the returned list. */
export function auditedReceiptEffect(table: StateTable, apply: ApplyReceipt, service: 'app' | 'interface' = 'app'): { effect: ReturnType<typeof receiptEffect>; audit: AuditEvent[] } {
  const audit: AuditEvent[] = [];
  const effect = receiptEffect({ table, ttlSeconds: 3600, audit: { record: async (e) => void audit.push(e) }, service, logger: captureLogger(service).logger, apply });
  return { effect, audit };
}
