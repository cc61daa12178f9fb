import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { GENESIS_HASH, parseEntryLine, type AuditEntry } from './chain.ts';
import { AuditError } from './errors.ts';

/** Result of {@link verifyAuditFile}: the entry count, or the first bad line (1-based) and why. */
export type AuditVerifyResult = { ok: true; count: number } | { ok: false; line: number; reason: string };

/** The chain position after a line: its seq and hash. */
export interface ChainHead {
  /** seq of the line (0 before the first). */
  seq: number;
  /** hash of the line ({@link GENESIS_HASH} before the first). */
  hash: string;
}

/** Result of {@link scanAuditFile}: the chain check plus the head and the sha256 of the whole file. */
export type AuditScan = ({ ok: true; count: number } | { ok: false; line: number; reason: string }) & {
  /** Last line that chained correctly. */
  head: ChainHead;
  /** sha256 hex of the file's bytes (what an operator override names). */
  digest: string;
};

/** Checks one line against the chain so far; exported for callers that verify a stream themselves. */
export function checkChainLine(text: string, lineNo: number, last: ChainHead): ChainHead | { reason: string } {
  const checked = checkChainEntry(text, lineNo, last);
  return 'reason' in checked ? checked : { seq: checked.seq, hash: checked.hash };
}

function checkChainEntry(text: string, lineNo: number, last: ChainHead): AuditEntry | { reason: string } {
  if (text.length === 0) return { reason: 'empty line' };
  const parsed = parseEntryLine(text);
  if ('reason' in parsed) return parsed;
  const { entry } = parsed;
  if (entry.seq !== last.seq + 1) return { reason: `seq ${entry.seq}, expected ${last.seq + 1}` };
  if (entry.prev !== last.hash) {
    if (lineNo > 1) return { reason: `prev does not match the hash of line ${lineNo - 1}` };
    return { reason: last.seq === 0 ? 'prev is not the genesis hash' : `prev does not match the hash of seq ${last.seq} (the previous segment's last line)` };
  }
  return entry;
}

/**
 * Streams a trail once: checks the chain line by line, calls `onEntry` for each good line
 * (it may return a reason to stop at that line), and digests the whole file. `start` is the
 * chain position before its first line: genesis for a whole trail, the previous segment's
 * last line for a later segment. `digest` may be shared to digest a run of segments as one.
 * Throws AuditError (CR_AUDIT_UNREADABLE) when the file cannot be read.
 */
export async function scanAuditFile(
  path: string,
  onEntry?: (entry: AuditEntry) => string | undefined,
  start: ChainHead = { seq: 0, hash: GENESIS_HASH },
  shared?: Hash,
): Promise<AuditScan> {
  let head: ChainHead = { ...start };
  let lineNo = 0;
  let carry = Buffer.alloc(0);
  let failure: { line: number; reason: string } | undefined;
  const digest = shared ?? createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) {
      digest.update(chunk as Buffer);
      if (failure) continue;
      let buf = carry.length > 0 ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
      let nl: number;
      while (!failure && (nl = buf.indexOf(0x0a)) >= 0) {
        lineNo += 1;
        const next = checkChainEntry(buf.subarray(0, nl).toString('utf8'), lineNo, head);
        const reason = 'reason' in next ? next.reason : onEntry?.(next);
        if (reason !== undefined) failure = { line: lineNo, reason };
        else head = { seq: (next as AuditEntry).seq, hash: (next as AuditEntry).hash };
        buf = buf.subarray(nl + 1);
      }
      carry = Buffer.from(buf);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new AuditError('CR_AUDIT_UNREADABLE', `audit trail ${path}: cannot read (${code})`, err);
  }
  // A shared digest goes on over the next segment; its caller finalizes it.
  const hex = shared ? '' : digest.digest('hex');
  if (failure) return { ok: false, ...failure, head, digest: hex };
  if (carry.length > 0) return { ok: false, line: lineNo + 1, reason: 'incomplete last line (no trailing newline)', head, digest: hex };
  return { ok: true, count: lineNo, head, digest: hex };
}

/**
 * Verifies a hash-chained audit trail line by line (streaming): seq continuity, prev linkage,
 * each entry's hash, JSON shape and a final newline. Names the first bad line. The chain alone
 * cannot show truncation or a full rewrite: see trailCheck.ts for the check against checkpoints.
 * Throws AuditError (CR_AUDIT_UNREADABLE) when the file cannot be read.
 */
export async function verifyAuditFile(path: string): Promise<AuditVerifyResult> {
  const scan = await scanAuditFile(path);
  return scan.ok ? { ok: true, count: scan.count } : { ok: false, line: scan.line, reason: scan.reason };
}
