import type { PublicKey } from 'openpgp';
import { verifyCheckpoint, type Checkpoint, type SignedCheckpoint } from './checkpoint.ts';
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { GENESIS_HASH, type AuditEntry } from './chain.ts';
import type { ClosedSegment } from './segments.ts';
import { scanAuditFile, type ChainHead } from './verify.ts';

/** A checkpoint the trail must agree with, and who vouches for it. */
export interface TrailMark {
  /** The checkpoint. */
  checkpoint: Checkpoint;
  /** `signed` (by the service itself) or `witnessed by <peer>`. */
  source: string;
}

/** Result of {@link checkTrail} and {@link checkRun}: one line that says what holds or what is wrong. */
export type TrailCheck =
  | { ok: true; count: number; head: ChainHead; digest: string; marks: number; lastMarkSeq: number }
  | { ok: false; message: string; head: ChainHead; digest: string };

/** One file of a run: a closed segment (its name gives its range) or the open trail (no range). */
export interface RunFile {
  /** Path of the file. */
  path: string;
  /** The range its name declares, for a closed segment. */
  range?: ClosedSegment | undefined;
}

/**
 * Checks a trail against its chain and against checkpoints: every mark's head hash must be the
 * hash of the line at its seq (else the trail was rewritten), and the trail must reach the
 * highest marked seq (else it was truncated). Deleted, reordered and edited lines break the chain.
 */
export async function checkTrail(file: string, marks: readonly TrailMark[]): Promise<TrailCheck> {
  return checkRun([{ path: file }], marks);
}

/**
 * Checks a run of segments, in the given order, as one chain from `start` (genesis for a whole
 * trail): each segment must begin right after the previous one ended (else one is missing, or
 * they are out of order) and link to its last hash, each closed segment must end where its name
 * says (else it was cut or swapped), and the checks of {@link checkTrail} hold over the whole run.
 */
export async function checkRun(files: readonly RunFile[], marks: readonly TrailMark[], start: ChainHead = { seq: 0, hash: GENESIS_HASH }): Promise<TrailCheck> {
  const bySeq = new Map<number, TrailMark[]>();
  let last: TrailMark | undefined;
  for (const mark of marks) {
    bySeq.set(mark.checkpoint.seq, [...(bySeq.get(mark.checkpoint.seq) ?? []), mark]);
    if (!last || mark.checkpoint.seq > last.checkpoint.seq) last = mark;
  }
  const onEntry = (entry: AuditEntry): string | undefined => {
    for (const mark of bySeq.get(entry.seq) ?? []) {
      if (mark.checkpoint.headHash !== entry.hash) {
        return `hash differs from the checkpoint ${mark.source} at ${mark.checkpoint.at} (trail rewritten)`;
      }
    }
    return undefined;
  };
  const hash = createHash('sha256');
  let head: ChainHead = { ...start };
  let count = 0;
  const fail = (message: string): TrailCheck => ({ ok: false, message, head, digest: hash.digest('hex') });
  for (const file of files) {
    const label = files.length > 1 ? `segment ${basename(file.path)}: ` : '';
    const range = file.range;
    if (range && range.first !== head.seq + 1) {
      return fail(
        range.first > head.seq + 1
          ? `${label}begins at seq ${range.first}, expected ${head.seq + 1}: a segment is missing before it`
          : `${label}begins at seq ${range.first}, expected ${head.seq + 1}: segments overlap or are out of order`,
      );
    }
    const scan = await scanAuditFile(file.path, onEntry, head, hash);
    head = scan.head;
    if (!scan.ok) return fail(`${label}line ${scan.line}: ${scan.reason}`);
    count += scan.count;
    if (range && (head.seq !== range.last || !head.hash.startsWith(range.hashPrefix))) {
      return fail(`${label}ends at seq ${head.seq}, but its name says seq ${range.last} with hash ${range.hashPrefix}…: the segment was truncated or replaced`);
    }
  }
  const digest = hash.digest('hex');
  if (last && last.checkpoint.seq > head.seq) {
    const what = head.seq === 0 ? 'empty trail' : `truncated: the trail ends at seq ${head.seq}`;
    return { ok: false, message: `${what}, but the checkpoint ${last.source} at ${last.checkpoint.at} covers seq ${last.checkpoint.seq}`, head, digest };
  }
  return { ok: true, count, head, digest, marks: marks.length, lastMarkSeq: last?.checkpoint.seq ?? 0 };
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
