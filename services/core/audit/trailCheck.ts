import type { PublicKey } from 'openpgp';
import { verifyCheckpoint, type Checkpoint, type SignedCheckpoint } from './checkpoint.ts';
import { scanAuditFile, type ChainHead } from './verify.ts';

/** A checkpoint the trail must agree with, and who vouches for it. */
export interface TrailMark {
  /** The checkpoint. */
  checkpoint: Checkpoint;
  /** `signed` (by the service itself) or `witnessed by <peer>`. */
  source: string;
}

/** Result of {@link checkTrail}: one line that says what holds or what is wrong. */
export type TrailCheck =
  | { ok: true; count: number; head: ChainHead; digest: string; marks: number; lastMarkSeq: number }
  | { ok: false; message: string; head: ChainHead; digest: string };

/**
 * Checks a trail against its chain and against checkpoints: every mark's head hash must be the
 * hash of the line at its seq (else the trail was rewritten), and the trail must reach the
 * highest marked seq (else it was truncated). Deleted, reordered and edited lines break the chain.
 */
export async function checkTrail(file: string, marks: readonly TrailMark[]): Promise<TrailCheck> {
  const bySeq = new Map<number, TrailMark[]>();
  let last: TrailMark | undefined;
  for (const mark of marks) {
    bySeq.set(mark.checkpoint.seq, [...(bySeq.get(mark.checkpoint.seq) ?? []), mark]);
    if (!last || mark.checkpoint.seq > last.checkpoint.seq) last = mark;
  }
  const scan = await scanAuditFile(file, (entry) => {
    for (const mark of bySeq.get(entry.seq) ?? []) {
      if (mark.checkpoint.headHash !== entry.hash) {
        return `hash differs from the checkpoint ${mark.source} at ${mark.checkpoint.at} (trail rewritten)`;
      }
    }
    return undefined;
  });
  const { head, digest } = scan;
  if (!scan.ok) return { ok: false, message: `line ${scan.line}: ${scan.reason}`, head, digest };
  if (last && last.checkpoint.seq > scan.count) {
    const what = scan.count === 0 ? 'empty trail' : `truncated: the trail ends at seq ${scan.count}`;
    return { ok: false, message: `${what}, but the checkpoint ${last.source} at ${last.checkpoint.at} covers seq ${last.checkpoint.seq}`, head, digest };
  }
  return { ok: true, count: scan.count, head, digest, marks: marks.length, lastMarkSeq: last?.checkpoint.seq ?? 0 };
}

/**
 * The service's own checkpoints from a checkpoint file's entries, signature-checked: `all`
 * verifies every one (the CLI), otherwise only the newest (a service start: the newest
 * signed head hash pins every line before it through the chain). Returns the first forged one.
 */
export async function ownMarks(
  entries: readonly SignedCheckpoint[],
  service: string,
  keys: readonly PublicKey[],
  options: { all: boolean },
): Promise<{ marks: TrailMark[] } | { reason: string }> {
  const own = entries.filter((e) => e.checkpoint.service === service);
  const toVerify = options.all ? own : own.slice(-1);
  for (const signed of toVerify) {
    const result = await verifyCheckpoint(signed, keys);
    if (!result.ok) return { reason: `checkpoint for seq ${signed.checkpoint.seq} at ${signed.checkpoint.at}: ${result.reason} (forged checkpoint)` };
  }
  return { marks: own.map((signed) => ({ checkpoint: signed.checkpoint, source: 'signed' })) };
}
