import { constants } from 'node:fs';
import { open, rename, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { entryHash, type AuditEntry } from './chain.ts';
import { AuditError } from './errors.ts';
import { closedSegmentPath, listClosedSegments, readChainTail, readFirstEntry, type ClosedSegment } from './segments.ts';
import type { AuditEvent, AuditSink } from './types.ts';

/** When the open segment of a trail is closed and a new one begun (either limit, whichever comes first). */
export interface RotationPolicy {
  /** Close the segment once it holds at least this many bytes (AUDIT_ROTATE_BYTES); 0 or absent = no size limit. */
  maxBytes?: number | undefined;
  /** Close the segment once its first line is this old (AUDIT_ROTATE_SECONDS, in ms); 0 or absent = no age limit. */
  maxAgeMs?: number | undefined;
}

/** Options for {@link openAuditLog}. */
export interface OpenAuditLogOptions {
  /** Path of the open segment of the JSON-lines trail; created with mode 0600 if missing, appended to otherwise. */
  file: string;
  /** Service name written on every line. */
  service: string;
  /** Clock for `ts` and segment age (tests inject a fake one). */
  now?: () => Date;
  /** Segment rotation; none when absent (one ever-growing file). */
  rotation?: RotationPolicy;
  /** Called after a segment was closed (renamed next to the trail) and a new one begun, or when a rotation failed. */
  onRotation?: (event: { closed: ClosedSegment } | { error: AuditError }) => void;
}

/** A hash-chained, durable audit trail: one writer per file. */
export interface AuditLog extends AuditSink {
  /** Path of the trail's open segment. */
  readonly file: string;
  /** seq and hash of the last line that is durably written (what a checkpoint signs). */
  head(): { seq: number; hash: string };
  /** Closes the open segment if the rotation policy says it is due (age is checked here and before each write; size after each write). */
  rotateIfDue(): Promise<void>;
  /** Waits for queued records to be synced, then closes the file; later records reject. */
  close(): Promise<void>;
}

interface Pending {
  line: string;
  head: { seq: number; hash: string };
  ts: Date;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * O_DSYNC where the platform has it: each write returns once its bytes are on disk, as a write
 * followed by fdatasync would, in one call instead of two (half the thread-pool round trips per
 * batch; bench/auditSyncCpu.ts). Without it, each batch's write is followed by fdatasync.
 */
const DSYNC: number = constants.O_DSYNC ?? 0;
const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | DSYNC;

/**
 * Opens (or creates) an audit trail and continues its chain from the last line of the open
 * segment, or of the last closed segment when the open one is empty or missing (a crash
 * between closing a segment and beginning the next). Records are serialized; each `record()`
 * resolves only after its line is on disk (written with O_DSYNC, or written and fdatasync'ed;
 * the records of one turn of the event loop, and those queued while a write runs, are written
 * together). Rotation runs in the same serialized
 * writer, between batches: the segment is renamed (atomic) to its closed name and a new file
 * begun, so no line is lost or written twice, and the next line links to the last one of the
 * closed segment.
 * Refuses a file whose last line is not a valid chained entry: run `care-relay audit verify`.
 */
export async function openAuditLog(options: OpenAuditLogOptions): Promise<AuditLog> {
  const { file, service } = options;
  const now = options.now ?? (() => new Date());
  const maxBytes = options.rotation?.maxBytes ?? 0;
  const maxAgeMs = options.rotation?.maxAgeMs ?? 0;
  const existed = await stat(file).then(
    () => true,
    () => false,
  );
  let fh: FileHandle;
  try {
    fh = await open(file, APPEND, 0o600);
  } catch (err) {
    throw new AuditError('CR_AUDIT_UNREADABLE', `audit trail ${file}: cannot open (${errCode(err)})`, err);
  }
  let last: { seq: number; hash: string };
  let first: AuditEntry | undefined;
  let bytes: number;
  try {
    last = await readChainTail(file);
    if (last.seq === 0) {
      const closed = (await listClosedSegments(file)).at(-1);
      if (closed) last = await readChainTail(closed.path);
    } else {
      first = await readFirstEntry(file);
    }
    bytes = (await fh.stat()).size;
    if (!existed) await syncDir(dirname(file));
  } catch (err) {
    await fh.close();
    throw err;
  }

  let seq = last.seq;
  let prev = last.hash;
  let durable = { seq: last.seq, hash: last.hash };
  // The open segment: its first seq and when its first line was written (undefined while empty).
  let segment: { first: number; startedAt: number } | undefined = first ? { first: first.seq, startedAt: Date.parse(first.ts) } : undefined;
  let queue: Pending[] = [];
  let checks: Array<() => void> = [];
  let flushing: Promise<void> | undefined;
  let failure: AuditError | undefined;
  let closed = false;

  const due = (): boolean =>
    segment !== undefined && ((maxBytes > 0 && bytes >= maxBytes) || (maxAgeMs > 0 && now().getTime() - segment.startedAt >= maxAgeMs));

  async function rotate(): Promise<void> {
    const closing = { first: segment!.first, last: durable.seq, hash: durable.hash };
    const target = closedSegmentPath(file, closing.first, closing.last, closing.hash);
    await fh.close();
    try {
      await rename(file, target);
    } catch (err) {
      // Not renamed: the segment stays open and the writer goes on appending to it.
      fh = await open(file, APPEND, 0o600);
      options.onRotation?.({ error: new AuditError('CR_AUDIT_WRITE_FAILED', `audit trail ${file}: cannot close the segment (${errCode(err)})`, err) });
      return;
    }
    // O_EXCL: the new segment is this writer's own; a file that appeared there is not appended to.
    fh = await open(file, APPEND | constants.O_EXCL, 0o600);
    await syncDir(dirname(file));
    bytes = 0;
    segment = undefined;
    options.onRotation?.({ closed: { path: target, first: closing.first, last: closing.last, hashPrefix: closing.hash.slice(0, 12) } });
  }

  async function flush(): Promise<void> {
    // Wait one turn of the event loop first: `flushing` then holds this promise before the loop can
    // end and clear it, and the records of every callback of this turn are written together.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (!failure && (queue.length > 0 || checks.length > 0)) {
      const waiting = checks;
      checks = [];
      const batch = queue;
      queue = [];
      try {
        if (due()) await rotate();
        if (batch.length > 0) {
          const text = Buffer.from(batch.map((p) => p.line).join(''), 'utf8');
          await writeAll(fh, text);
          if (DSYNC === 0) await fh.datasync();
          durable = batch.at(-1)!.head;
          bytes += text.length;
          segment ??= { first: batch[0]!.head.seq, startedAt: batch[0]!.ts.getTime() };
          for (const p of batch) p.resolve();
          if (due()) await rotate();
        }
      } catch (err) {
        // The file's tail is now unknown: fail closed rather than fork the chain.
        failure = new AuditError('CR_AUDIT_WRITE_FAILED', `audit trail ${file}: write failed (${errCode(err)})`, err);
        for (const p of [...batch, ...queue]) p.reject(failure);
        queue = [];
      }
      for (const done of waiting) done();
    }
    for (const done of checks) done();
    checks = [];
    flushing = undefined;
  }

  return {
    file,
    head: () => ({ ...durable }),
    rotateIfDue(): Promise<void> {
      if (failure || closed) return Promise.resolve();
      return new Promise<void>((resolve) => {
        checks.push(resolve);
        flushing ??= flush();
      });
    },
    record(event: AuditEvent): Promise<void> {
      if (failure) return Promise.reject(failure);
      if (closed) return Promise.reject(new AuditError('CR_AUDIT_CLOSED', `audit trail ${file}: closed`));
      const ts = now();
      const unhashed: Omit<AuditEntry, 'hash'> = {
        seq: seq + 1,
        ts: ts.toISOString(),
        service,
        action: event.action,
        actor: event.actor,
        resourceType: event.resourceType,
        ...(event.resourceId === undefined ? {} : { resourceId: event.resourceId }),
        outcome: event.outcome,
        ...(event.sourceIp === undefined ? {} : { sourceIp: event.sourceIp }),
        ...(event.details === undefined ? {} : { details: { ...event.details } }),
        prev,
      };
      const entry: AuditEntry = { ...unhashed, hash: entryHash(unhashed) };
      const line = JSON.stringify(entry) + '\n';
      seq = entry.seq;
      prev = entry.hash;
      return new Promise<void>((resolve, reject) => {
        queue.push({ line, head: { seq: entry.seq, hash: entry.hash }, ts, resolve, reject });
        flushing ??= flush();
      });
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await flushing;
      await fh.close();
    },
  };
}

/** Appends all of `data` (a write to a regular file may be short, on a full disk say: the rest follows, or the error). */
async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  for (let offset = 0; offset < data.length; ) {
    const { bytesWritten } = await fh.write(data, offset, data.length - offset);
    if (bytesWritten === 0) throw Object.assign(new Error('no byte written'), { code: 'EIO' });
    offset += bytesWritten;
  }
}

/** Syncs a directory so a newly created file's entry survives a crash (best effort where unsupported). */
export async function syncDir(dir: string): Promise<void> {
  let dh: FileHandle | undefined;
  try {
    dh = await open(dir, 'r');
    await dh.sync();
  } catch {
    // Some platforms cannot fsync a directory; the file's own data is still synced per record.
  } finally {
    await dh?.close();
  }
}

/** The system error code of `err` (`ENOSPC`, `EACCES`, …), or `error`. */
export function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? 'error';
}

/** An in-memory sink for tests: collects events in `events` in record order. */
export function memoryAudit(): AuditSink & { readonly events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return {
    events,
    record: async (event) => {
      events.push(structuredClone(event));
    },
  };
}
