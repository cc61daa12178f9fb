// Reads a service's audit trail back, for assertions on what it recorded.
import { readFile } from 'node:fs/promises';
import type { AuditEntry } from '../../services/core/audit/chain.ts';

/** Every line of the audit trail `file`, parsed, in the trail's order. */
export async function readTrail(file: string): Promise<AuditEntry[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEntry);
}
