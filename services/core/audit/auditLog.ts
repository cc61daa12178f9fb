import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GENESIS_HASH, entryHash, parseEntryLine, type AuditEntry } from './chain.ts';
import { AuditError } from './errors.ts';
import type { AuditEvent, AuditSink } from './types.ts';

/** Options for {@link openAuditLog}. */
export interface OpenAuditLogOptions {
  /** Path of the JSON-lines trail; created with mode 0600 if missing, appended to otherwise. */
  file: string;
  /** Service name written on every line. */
  service: string;
  /** Clock for `ts` (tests inject a fixed one). */
  now?: () => Date;
}

/** A hash-chained, durable audit trail: one writer per file. */
export interface AuditLog extends AuditSink {
  /** Path of the trail. */
  readonly file: string;
  /** seq and hash of the last line that is durably written (what a checkpoint signs). */
  head(): { seq: number; hash: string };
  /** Waits for queued records to be synced, then closes the file; later records reject. */
  close(): Promise<void>;
}

/** The longest last line the trail will read back when continuing a chain. */
const MAX_TAIL_LINE = 1024 * 1024;

interface Pending {
  line: string;
  head: { seq: number; hash: string };
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Opens (or creates) an audit trail and continues its chain from the last line.
 * Records are serialized; each `record()` resolves only after its line is written and
 * fdatasync'ed (records queued while a sync runs are written and synced together).
 * Refuses a file whose last line is not a valid chained entry: run `care-relay audit verify`.
 */
export async function openAuditLog(options: OpenAuditLogOptions): Promise<AuditLog> {
  const { file, service } = options;
  const now = options.now ?? (() => new Date());
  const existed = await stat(file).then(
    () => true,
    () => false,
  );
  let fh: FileHandle;
  try {
    fh = await open(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
  } catch (err) {
    throw new AuditError('CR_AUDIT_UNREADABLE', `audit trail ${file}: cannot open (${errCode(err)})`, err);
  }
  let last: { seq: number; hash: string };
  try {
    last = await readChainTail(file);
    if (!existed) await syncDir(dirname(file));
  } catch (err) {
    await fh.close();
    throw err;
  }

  let seq = last.seq;
  let prev = last.hash;
  let durable = { seq: last.seq, hash: last.hash };
  let queue: Pending[] = [];
  let flushing: Promise<void> | undefined;
  let failure: AuditError | undefined;
  let closed = false;

  async function flush(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      try {
        await fh.appendFile(batch.map((p) => p.line).join(''), 'utf8');
        await fh.datasync();
        durable = batch.at(-1)!.head;
        for (const p of batch) p.resolve();
      } catch (err) {
        // The file's tail is now unknown: fail closed rather than fork the chain.
        failure = new AuditError('CR_AUDIT_WRITE_FAILED', `audit trail ${file}: write failed (${errCode(err)})`, err);
        for (const p of [...batch, ...queue]) p.reject(failure);
        queue = [];
      }
    }
    flushing = undefined;
  }

  return {
    file,
    head: () => ({ ...durable }),
    record(event: AuditEvent): Promise<void> {
      if (failure) return Promise.reject(failure);
      if (closed) return Promise.reject(new AuditError('CR_AUDIT_CLOSED', `audit trail ${file}: closed`));
      const unhashed: Omit<AuditEntry, 'hash'> = {
        seq: seq + 1,
        ts: now().toISOString(),
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
        queue.push({ line, head: { seq: entry.seq, hash: entry.hash }, resolve, reject });
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

/** Reads the last line of a trail and returns its seq and hash (genesis for an empty or new file). */
async function readChainTail(file: string): Promise<{ seq: number; hash: string }> {
  const broken = (why: string): AuditError =>
    new AuditError(
      'CR_AUDIT_TAIL_BROKEN',
      `audit trail ${file}: cannot continue the chain, ${why}; run "care-relay audit verify" and archive the file`,
    );
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw new AuditError('CR_AUDIT_UNREADABLE', `audit trail ${file}: cannot read (${errCode(err)})`, err);
  }
  try {
    const { size } = await fh.stat();
    if (size === 0) return { seq: 0, hash: GENESIS_HASH };
    const lastByte = Buffer.alloc(1);
    await fh.read(lastByte, 0, 1, size - 1);
    if (lastByte[0] !== 0x0a) throw broken('the last line is incomplete (no trailing newline)');
    const end = size - 1;
    let start = end;
    const chunk = Buffer.alloc(64 * 1024);
    const parts: Buffer[] = [];
    while (start > 0) {
      const len = Math.min(chunk.length, start);
      await fh.read(chunk, 0, len, start - len);
      const nl = chunk.subarray(0, len).lastIndexOf(0x0a);
      if (nl >= 0) {
        parts.unshift(Buffer.from(chunk.subarray(nl + 1, len)));
        start = start - len + nl + 1;
        break;
      }
      parts.unshift(Buffer.from(chunk.subarray(0, len)));
      start -= len;
      if (end - start > MAX_TAIL_LINE) throw broken(`the last line is longer than ${MAX_TAIL_LINE} bytes`);
    }
    const line = Buffer.concat(parts).toString('utf8');
    const parsed = parseEntryLine(line);
    if ('reason' in parsed) throw broken(`the last line is invalid (${parsed.reason})`);
    return { seq: parsed.entry.seq, hash: parsed.entry.hash };
  } finally {
    await fh.close();
  }
}

/** Syncs a directory so a newly created file's entry survives a crash (best effort where unsupported). */
async function syncDir(dir: string): Promise<void> {
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

function errCode(err: unknown): string {
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
