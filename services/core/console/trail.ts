import { open } from 'node:fs/promises';
import type { PublicKey } from 'openpgp';
import { parseEntryLine, type AuditEntry } from '../audit/chain.ts';
import { readCheckpointFile } from '../audit/checkpointStore.ts';
import { checkTrail, ownMarks } from '../audit/trailCheck.ts';

/** The outcome of the console's last verification of the trail. */
export interface TrailVerification {
  /** Epoch ms it ran. */
  at: number;
  /** The chain and the newest signed checkpoint agree. */
  ok: boolean;
  /** Lines verified (ok) or what is wrong (line number and reason; never a line's content). */
  summary: string;
}

/**
 * The last `limit` entries of an audit trail, newest first, read from its end (at most the
 * last `maxBytes`). Entries are as the trail holds them: PHI-bearing identifiers already hashed.
 */
export async function tailAuditTrail(file: string, limit: number, maxBytes = 512 * 1024): Promise<AuditEntry[]> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    const lines = buf.toString('utf8').split('\n');
    // A read that starts mid-file begins inside a line: that partial line is not an entry.
    if (start > 0) lines.shift();
    const entries: AuditEntry[] = [];
    for (const line of lines.reverse()) {
      if (line === '') continue;
      const parsed = parseEntryLine(line);
      if ('entry' in parsed) entries.push(parsed.entry);
      if (entries.length >= limit) break;
    }
    return entries;
  } finally {
    await fh.close();
  }
}

/** Verifies the trail's chain and its newest signed checkpoint (as a service start does). */
export async function verifyTrail(options: { file: string; checkpointFile: string; service: string; keys: readonly PublicKey[]; now?: () => number }): Promise<TrailVerification> {
  const at = (options.now ?? Date.now)();
  const read = await readCheckpointFile(options.checkpointFile);
  if (!read.ok) return { at, ok: false, summary: `checkpoint file line ${read.line}: ${read.reason}` };
  const marks = await ownMarks(read.checkpoints, options.service, options.keys, { all: false });
  if ('reason' in marks) return { at, ok: false, summary: marks.reason };
  const result = await checkTrail(options.file, marks.marks);
  return result.ok
    ? { at, ok: true, summary: `${result.count} lines chained; checkpoints agree up to seq ${result.lastMarkSeq}` }
    : { at, ok: false, summary: result.message };
}
