import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { errCode, openAuditLog, syncDir, type AuditLog, type OpenAuditLogOptions } from './auditLog.ts';
import { AuditError } from './errors.ts';
import type { AuditEvent } from './types.ts';

/** What a write cut short left after a file's last complete line, and where it was moved. */
export interface TornTail {
  /** Bytes after the last newline, now cut from the file. */
  bytes: number;
  /** The file that holds them, beside the one they were cut from: `<file>.torn-<first 16 hex of their sha256>`. */
  savedAs: string;
}

/** An incomplete last line moved aside, and which file it was cut from. */
export type TornFile = TornTail & { of: 'trail' | 'checkpoints' };

const CHUNK = 64 * 1024;

/**
 * The most a crash can have left after the last newline: one line, and the writer reads back no longer
 * line either (segments.ts). Past it the bytes are not a write cut short; the start check then refuses
 * the trail as before, and the operator decides.
 */
const MAX_TORN = 1024 * 1024;

/**
 * Moves an incomplete last line out of a file of JSON lines that is only appended to: the open trail
 * file, or its checkpoint file. The trail appends each batch of lines with one write through an
 * `O_DSYNC` descriptor and answers its callers once that write returned; the checkpoint store appends
 * a line and syncs it before a checkpoint counts. So bytes after the last newline are a write that a
 * crash (kill -9, power loss) cut short: no caller was told they were recorded, and no checkpoint
 * covers them. They are kept, byte for byte, in a file of their own (synced before the cut), and the
 * file is cut back to its last complete line, so the chain goes on from there. Complete lines are never
 * touched: whatever else is wrong with them is the start check's to find. Undefined when the file is
 * missing, empty or ends with a newline, and when more than {@link MAX_TORN} bytes follow the last
 * newline (left as they are).
 */
export async function cutTornTail(file: string): Promise<TornTail | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unreadable(file, err);
  }
  try {
    const { size } = await fh.stat();
    if (size === 0) return undefined;
    const keep = await lengthThroughLastNewline(fh, size);
    if (keep === undefined || keep === size) return undefined;
    const torn = Buffer.alloc(size - keep);
    await fh.read(torn, 0, torn.length, keep);
    const savedAs = `${file}.torn-${createHash('sha256').update(torn).digest('hex').slice(0, 16)}`;
    await saveAside(savedAs, torn);
    await fh.truncate(keep);
    await fh.datasync();
    return { bytes: torn.length, savedAs };
  } catch (err) {
    if (err instanceof AuditError) throw err;
    throw new AuditError('CR_AUDIT_WRITE_FAILED', `${file}: cannot move its incomplete last line aside (${errCode(err)})`, err);
  } finally {
    await fh.close();
  }
}

/**
 * The `audit.torn_tail` event for a moved-aside tail: the side file's name as the resource; `afterSeq`, the
 * seq the trail goes on from, when it is the trail's own tail and that seq is known.
 */
export function tornTailEvent(actor: string, torn: TornFile, afterSeq: number | undefined): AuditEvent {
  return {
    action: 'audit.torn_tail',
    actor,
    resourceType: 'audit-trail',
    resourceId: basename(torn.savedAs),
    outcome: 'success',
    details: { of: torn.of, bytes: torn.bytes, savedAs: torn.savedAs, ...(afterSeq !== undefined && torn.of === 'trail' ? { afterSeq } : {}) },
  };
}

/**
 * Opens a trail that no start check guards (the CLI's own: `care-relay dlq|quarantine redrive|purge`,
 * `care-relay sms sweep`). An incomplete last line that a run killed in the middle of a write left is
 * moved aside first ({@link cutTornTail}), and the first new line records it (`audit.torn_tail` by
 * `actor`); anything else wrong with the file is still refused by {@link openAuditLog}.
 */
export async function openAuditLogCuttingTornTail(options: OpenAuditLogOptions & { actor: string }): Promise<{ audit: AuditLog; torn: TornTail | undefined }> {
  const torn = await cutTornTail(options.file);
  let audit: AuditLog;
  try {
    audit = await openAuditLog(options);
  } catch (err) {
    // Refused for another reason: say where the bytes already moved aside are.
    if (torn && err instanceof AuditError) throw new AuditError(err.code, `${err.message} (its incomplete last line, ${torn.bytes} bytes, was moved to ${torn.savedAs} first)`, err);
    throw err;
  }
  if (torn) {
    try {
      await audit.record(tornTailEvent(options.actor, { ...torn, of: 'trail' }, audit.head().seq));
    } catch (err) {
      await audit.close();
      throw err;
    }
  }
  return { audit, torn };
}

/** The file's length up to and including its last newline (0 when it has none); undefined when that is more than {@link MAX_TORN} bytes back. */
async function lengthThroughLastNewline(fh: FileHandle, size: number): Promise<number | undefined> {
  const chunk = Buffer.alloc(CHUNK);
  for (let end = size; end > 0; ) {
    if (size - end >= MAX_TORN) return undefined;
    const start = Math.max(0, end - CHUNK);
    const { bytesRead } = await fh.read(chunk, 0, end - start, start);
    const nl = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (nl >= 0) return start + nl + 1;
    end = start;
  }
  return 0;
}

/**
 * Writes `bytes` to `path` (0600) and syncs it and its folder. The name comes from the bytes' hash, so a file
 * already there from a start that crashed before the cut is written again with the same bytes.
 */
async function saveAside(path: string, bytes: Buffer): Promise<void> {
  const out = await open(path, 'w', 0o600);
  try {
    await out.writeFile(bytes);
    await out.datasync();
  } finally {
    await out.close();
  }
  await syncDir(dirname(path));
}

function unreadable(file: string, err: unknown): AuditError {
  return new AuditError('CR_AUDIT_UNREADABLE', `${file}: cannot read (${errCode(err)})`, err);
}
