// Reads a service's audit trail back, for assertions on what it recorded.
import { readFile } from 'node:fs/promises';
import type { AuditEntry } from '../../services/core/audit/chain.ts';
import { listClosedSegments } from '../../services/core/audit/segments.ts';

/**
 * Every line of the audit trail `file`, parsed, in the trail's order: its closed segments on disk,
 * then the open file. An incomplete last line of the open file (a write a kill cut short, which the
 * next start moves aside) is left out; any other line that does not parse throws.
 */
export async function readTrail(file: string): Promise<AuditEntry[]> {
  const closed = await Promise.all((await listClosedSegments(file)).map((s) => readFile(s.path, 'utf8')));
  const lines = [...closed, await readFile(file, 'utf8')].flatMap((text) => text.split('\n').filter(Boolean));
  const last = lines.length - 1;
  return lines.flatMap((l, i) => {
    try {
      return [JSON.parse(l) as AuditEntry];
    } catch (err) {
      if (i === last) return [];
      throw err;
    }
  });
}
