import { createHash } from 'node:crypto';
import { rename, stat } from 'node:fs/promises';
import type { PublicKey } from 'openpgp';
import { readCheckpointFile } from './checkpointStore.ts';
import { AuditError } from './errors.ts';
import { checkRun, ownMarks, type RunFile, type TrailMark } from './trailCheck.ts';
import { listClosedSegments, readChainTail, type ClosedSegment } from './segments.ts';
import { basename } from 'node:path';
import type { ChainHead } from './verify.ts';
import { GENESIS_HASH } from './chain.ts';
import { cutTornTail, type TornFile } from './tornTail.ts';

/** Options for {@link checkTrailAtStart}. */
export interface TrailStartOptions {
  /** The trail (AUDIT_FILE). */
  file: string;
  /** The service's checkpoint file. */
  checkpointFile: string;
  /** Service name (whose checkpoints count). */
  service: string;
  /** The service's own public keys (current and older). */
  keys: readonly PublicKey[];
  /** AUDIT_ACCEPT_BROKEN_TRAIL: the sha256 of a broken trail the operator accepts. */
  acceptDigest?: string | undefined;
}

/** What the start check decided: go on, or the broken trail was archived by the operator's override. */
export type TrailStart = (
  | { status: 'ok'; head: ChainHead; unusedOverride: boolean }
  | { status: 'overridden'; digest: string; reason: string; head: ChainHead; archived: { trail?: string; checkpoints?: string; segments?: number } }
) & {
  /** Incomplete last lines (writes a crash cut short) moved out of the trail and its checkpoint file first ({@link cutTornTail}). */
  torn: TornFile[];
};

const EMPTY_DIGEST = createHash('sha256').digest('hex');

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Verifies the trail against the chain and the service's signed checkpoints before the service
 * writes to it. A trail that does not verify stops the start (AuditError CR_AUDIT_TRAIL_UNVERIFIED
 * naming why and the sha256 of what was read), unless `acceptDigest` is exactly that sha256: then
 * the trail's local segments and its checkpoint file are renamed aside (`.broken-<digest>`) and a
 * new trail begins.
 *
 * First, an incomplete last line of the open file or of the checkpoint file (a write that a crash cut
 * short) is moved to a file of its own and cut ({@link cutTornTail}); the checks then read the complete lines.
 *
 * With closed segments, only the run from the segment that holds the newest signed checkpoint
 * to the open segment is read (see {@link startRun}): the signature pins that line's hash, and
 * the chain pins every line before it, so older segments need not be read at each start
 * (`care-relay audit verify` checks the whole run).
 */
export async function checkTrailAtStart(options: TrailStartOptions): Promise<TrailStart> {
  const { file, checkpointFile } = options;
  const torn: TornFile[] = [];
  for (const [of, path] of [['trail', file], ['checkpoints', checkpointFile]] as const) {
    const cut = await cutTornTail(path);
    if (cut) torn.push({ ...cut, of });
  }
  const closed = await listClosedSegments(file);
  const problem = await findProblem(options, closed);
  if ('head' in problem && !('reason' in problem)) return { status: 'ok', head: problem.head, unusedOverride: options.acceptDigest !== undefined, torn };
  if (options.acceptDigest !== problem.digest) {
    throw new AuditError(
      'CR_AUDIT_TRAIL_UNVERIFIED',
      `audit trail ${file} does not verify: ${problem.reason}; inspect it with "care-relay audit verify", then to archive it and start a new trail set AUDIT_ACCEPT_BROKEN_TRAIL=${problem.digest}`,
    );
  }
  const suffix = `.broken-${problem.digest.slice(0, 16)}`;
  const archived: { trail?: string; checkpoints?: string; segments?: number } = {};
  if (await exists(file)) await rename(file, (archived.trail = file + suffix));
  if (await exists(checkpointFile)) await rename(checkpointFile, (archived.checkpoints = checkpointFile + suffix));
  // The new trail starts at seq 1 again: the old chain's closed segments are set aside with it.
  for (const segment of closed) await rename(segment.path, segment.path + suffix);
  if (closed.length > 0) archived.segments = closed.length;
  return { status: 'overridden', digest: problem.digest, reason: problem.reason, head: problem.head, archived, torn };
}

type Finding = { reason: string; digest: string; head: ChainHead } | { head: ChainHead };

async function findProblem(options: TrailStartOptions, closed: ClosedSegment[]): Promise<Finding> {
  const { file, checkpointFile, service } = options;
  const openExists = await exists(file);
  const trailExists = openExists || closed.length > 0;
  const genesis = { seq: 0, hash: GENESIS_HASH };
  const everything = (): RunFile[] => [...closed.map((c) => ({ path: c.path, range: c })), ...(openExists ? [{ path: file }] : [])];
  const read = await readCheckpointFile(checkpointFile);
  const digestOnly = async (): Promise<{ digest: string; head: ChainHead }> => {
    if (!trailExists) return { digest: EMPTY_DIGEST, head: genesis };
    const r = await checkRun(everything(), []);
    return { digest: r.digest, head: r.head };
  };
  if (!read.ok) return { reason: `checkpoint file line ${read.line}: ${read.reason}`, ...(await digestOnly()) };
  const own = await ownMarks(read.checkpoints, service, options.keys, { all: false });
  if ('reason' in own) return { reason: own.reason, ...(await digestOnly()) };
  const newest = own.marks.at(-1);
  if (!trailExists) {
    return newest ? { reason: `the trail is missing, but a signed checkpoint covers seq ${newest.checkpoint.seq}`, digest: EMPTY_DIGEST, head: genesis } : { head: genesis };
  }
  const run = newest ? await startRun(closed, newest) : { start: genesis, from: 0 };
  if ('reason' in run) return { reason: run.reason, ...(await digestOnly()) };
  const files: RunFile[] = [...closed.slice(run.from).map((c) => ({ path: c.path, range: c })), ...(openExists ? [{ path: file }] : [])];
  const result = await checkRun(files, own.marks, run.start);
  if (!result.ok) return { reason: result.message, digest: result.digest, head: result.head };
  if (result.head.seq > 0 && own.marks.length === 0) {
    return { reason: `the trail has ${result.count} lines but no signed checkpoint (checkpoint file missing or emptied)`, digest: result.digest, head: result.head };
  }
  return { head: result.head };
}

/**
 * Where the start check begins reading: at the closed segment that holds the newest checkpoint's
 * seq (from the last line of the segment before it), or, when that seq is a segment's last line
 * (a checkpoint is signed at each rotation), only that line is read, checked against the signed
 * hash, and reading goes on with the next segment.
 */
async function startRun(closed: ClosedSegment[], newest: TrailMark): Promise<{ start: ChainHead; from: number } | { reason: string }> {
  const seq = newest.checkpoint.seq;
  const tailOf = async (segment: ClosedSegment): Promise<ChainHead | { reason: string }> => {
    try {
      const tail = await readChainTail(segment.path);
      if (tail.seq !== segment.last || !tail.hash.startsWith(segment.hashPrefix)) {
        return { reason: `segment ${basename(segment.path)} ends at seq ${tail.seq}, but its name says seq ${segment.last}: the segment was truncated or replaced` };
      }
      return { seq: tail.seq, hash: tail.hash };
    } catch (err) {
      return { reason: (err as Error).message };
    }
  };
  if (closed.length === 0) return { start: { seq: 0, hash: GENESIS_HASH }, from: 0 };
  const i = closed.findIndex((c) => c.first <= seq && seq <= c.last);
  if (i < 0 && seq > closed.at(-1)!.last) {
    const tail = await tailOf(closed.at(-1)!);
    return 'reason' in tail ? tail : { start: tail, from: closed.length };
  }
  if (i < 0) return { reason: `the newest checkpoint covers seq ${seq}, in a segment that is not on this host (restore it from the archive)` };
  if (closed[i]!.last === seq) {
    const tail = await tailOf(closed[i]!);
    if ('reason' in tail) return tail;
    if (tail.hash !== newest.checkpoint.headHash) return { reason: `seq ${seq}: hash differs from the checkpoint ${newest.source} at ${newest.checkpoint.at} (trail rewritten)` };
    return { start: tail, from: i + 1 };
  }
  if (i === 0) return closed[0]!.first === 1 ? { start: { seq: 0, hash: GENESIS_HASH }, from: 0 } : { reason: `the first segment on this host begins at seq ${closed[0]!.first}: the segments before it are missing` };
  const before = await tailOf(closed[i - 1]!);
  return 'reason' in before ? before : { start: before, from: i };
}
