import { createHash } from 'node:crypto';
import { rename, stat } from 'node:fs/promises';
import type { PublicKey } from 'openpgp';
import { readCheckpointFile } from './checkpointStore.ts';
import { AuditError } from './errors.ts';
import { checkTrail, ownMarks } from './trailCheck.ts';
import type { ChainHead } from './verify.ts';
import { GENESIS_HASH } from './chain.ts';

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
export type TrailStart =
  | { status: 'ok'; head: ChainHead; unusedOverride: boolean }
  | { status: 'overridden'; digest: string; reason: string; head: ChainHead; archived: { trail?: string; checkpoints?: string } };

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
 * naming why and the file's sha256), unless `acceptDigest` is exactly that sha256: then the trail
 * and its checkpoint file are renamed aside (`.broken-<digest>`) and a new trail begins.
 */
export async function checkTrailAtStart(options: TrailStartOptions): Promise<TrailStart> {
  const { file, checkpointFile } = options;
  const problem = await findProblem(options);
  if ('head' in problem && !('reason' in problem)) return { status: 'ok', head: problem.head, unusedOverride: options.acceptDigest !== undefined };
  if (options.acceptDigest !== problem.digest) {
    throw new AuditError(
      'CR_AUDIT_TRAIL_UNVERIFIED',
      `audit trail ${file} does not verify: ${problem.reason}; inspect it with "care-relay audit verify", then to archive it and start a new trail set AUDIT_ACCEPT_BROKEN_TRAIL=${problem.digest}`,
    );
  }
  const suffix = `.broken-${problem.digest.slice(0, 16)}`;
  const archived: { trail?: string; checkpoints?: string } = {};
  if (await exists(file)) await rename(file, (archived.trail = file + suffix));
  if (await exists(checkpointFile)) await rename(checkpointFile, (archived.checkpoints = checkpointFile + suffix));
  return { status: 'overridden', digest: problem.digest, reason: problem.reason, head: problem.head, archived };
}

type Finding = { reason: string; digest: string; head: ChainHead } | { head: ChainHead };

async function findProblem(options: TrailStartOptions): Promise<Finding> {
  const { file, checkpointFile, service } = options;
  const trailExists = await exists(file);
  const genesis = { seq: 0, hash: GENESIS_HASH };
  const read = await readCheckpointFile(checkpointFile);
  const digestOnly = async (): Promise<{ digest: string; head: ChainHead }> => {
    if (!trailExists) return { digest: EMPTY_DIGEST, head: genesis };
    const r = await checkTrail(file, []);
    return { digest: r.digest, head: r.head };
  };
  if (!read.ok) return { reason: `checkpoint file line ${read.line}: ${read.reason}`, ...(await digestOnly()) };
  const own = await ownMarks(read.checkpoints, service, options.keys, { all: false });
  if ('reason' in own) return { reason: own.reason, ...(await digestOnly()) };
  if (!trailExists) {
    const last = own.marks.at(-1);
    return last ? { reason: `the trail is missing, but a signed checkpoint covers seq ${last.checkpoint.seq}`, digest: EMPTY_DIGEST, head: genesis } : { head: genesis };
  }
  const result = await checkTrail(file, own.marks);
  if (!result.ok) return { reason: result.message, digest: result.digest, head: result.head };
  if (result.count > 0 && own.marks.length === 0) {
    return { reason: `the trail has ${result.count} lines but no signed checkpoint (checkpoint file missing or emptied)`, digest: result.digest, head: result.head };
  }
  return { head: result.head };
}
