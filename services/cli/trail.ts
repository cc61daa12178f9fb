// The CLI's own audit trails (`--audit FILE`): opened so that a run killed in the middle of a write does not
// block the next one.
import type { AuditLog } from '../core/audit/auditLog.ts';
import { openAuditLogCuttingTornTail } from '../core/audit/tornTail.ts';

/**
 * Opens a command's own trail. An incomplete last line (a write a crash or kill -9 cut short) is moved to
 * `<file>.torn-<hex>`, recorded as `audit.torn_tail` by `actor`, and the operator is told on stderr.
 */
export async function openCliTrail(stderr: (text: string) => void, file: string, service: string, actor: string): Promise<AuditLog> {
  const { audit, torn } = await openAuditLogCuttingTornTail({ file, service, actor });
  if (torn) {
    stderr(`audit trail ${file} ended in an incomplete line (a write cut short): ${torn.bytes} byte(s) moved to ${torn.savedAs}, recorded as audit.torn_tail\n`);
  }
  return audit;
}
