import { createReadStream } from 'node:fs';
import { GENESIS_HASH, parseEntryLine } from './chain.ts';
import { AuditError } from './errors.ts';

/** Result of {@link verifyAuditFile}: the entry count, or the first bad line (1-based) and why. */
export type AuditVerifyResult = { ok: true; count: number } | { ok: false; line: number; reason: string };

/** Checks one line against the chain so far; exported for callers that verify a stream themselves. */
export function checkChainLine(
  text: string,
  lineNo: number,
  last: { seq: number; hash: string },
): { seq: number; hash: string } | { reason: string } {
  if (text.length === 0) return { reason: 'empty line' };
  const parsed = parseEntryLine(text);
  if ('reason' in parsed) return parsed;
  const { entry } = parsed;
  if (entry.seq !== last.seq + 1) return { reason: `seq ${entry.seq}, expected ${last.seq + 1}` };
  if (entry.prev !== last.hash) {
    return { reason: lineNo === 1 ? 'prev is not the genesis hash' : `prev does not match the hash of line ${lineNo - 1}` };
  }
  return { seq: entry.seq, hash: entry.hash };
}

/**
 * Verifies a hash-chained audit trail line by line (streaming): seq continuity, prev linkage,
 * each entry's hash, JSON shape and a final newline. Names the first bad line.
 * Throws AuditError (CR_AUDIT_UNREADABLE) when the file cannot be read.
 */
export async function verifyAuditFile(path: string): Promise<AuditVerifyResult> {
  let last = { seq: 0, hash: GENESIS_HASH };
  let lineNo = 0;
  let carry = Buffer.alloc(0);
  try {
    for await (const chunk of createReadStream(path)) {
      let buf = carry.length > 0 ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
      let nl: number;
      while ((nl = buf.indexOf(0x0a)) >= 0) {
        lineNo += 1;
        const next = checkChainLine(buf.subarray(0, nl).toString('utf8'), lineNo, last);
        if ('reason' in next) return { ok: false, line: lineNo, reason: next.reason };
        last = next;
        buf = buf.subarray(nl + 1);
      }
      carry = Buffer.from(buf);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new AuditError('CR_AUDIT_UNREADABLE', `audit trail ${path}: cannot read (${code})`, err);
  }
  if (carry.length > 0) return { ok: false, line: lineNo + 1, reason: 'incomplete last line (no trailing newline)' };
  return { ok: true, count: lineNo };
}
