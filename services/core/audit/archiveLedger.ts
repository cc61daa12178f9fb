import { constants } from 'node:fs';
import { open, readFile, truncate } from 'node:fs/promises';
import { z } from 'zod';
import { AuditError } from './errors.ts';

/** One closed segment recorded as shipped: what was uploaded where, and whether this process's upload was the one confirmed. */
export interface ArchivedSegment {
  /** File name of the closed segment (seq range and hash, no contents). */
  segment: string;
  /** The object key it was uploaded to. */
  key: string;
  /** sha256 hex of the uploaded bytes (also sent as the upload's checksum). */
  sha256: string;
  /** RFC 3339 time the upload was confirmed. */
  at: string;
  /** True when S3 answered that the object already existed (an upload whose record was lost in a crash): the local copy is then never removed. */
  existing?: boolean;
}

const entrySchema = z.strictObject({
  segment: z.string().min(1).max(255),
  key: z.string().min(1).max(1024),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  at: z.iso.datetime(),
  existing: z.boolean().optional(),
});

/** The ledger of shipped segments: `<AUDIT_FILE>.archived`, one JSON line per confirmed upload, fdatasync'ed. */
export interface ArchiveLedger {
  /** Path of the ledger file. */
  readonly file: string;
  /** The recorded segments by file name (read at start, then kept up to date). */
  readonly shipped: ReadonlyMap<string, ArchivedSegment>;
  /** Records a confirmed upload durably before anything relies on it (removal of the local copy). */
  record(entry: ArchivedSegment): Promise<void>;
}

/** Opens the ledger, reading what earlier runs shipped; a bad line stops the start (nothing is shipped twice or forgotten silently). */
export async function openArchiveLedger(file: string): Promise<ArchiveLedger> {
  const shipped = new Map<string, ArchivedSegment>();
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code !== 'ENOENT') throw new AuditError('CR_AUDIT_UNREADABLE', `archive ledger ${file}: cannot read (${code})`, err);
  }
  // A crash mid-append leaves an incomplete last line: it is cut off, so that upload is not recorded (it is retried, and S3 answers that it exists).
  const complete = text.split('\n').slice(0, -1);
  if (!text.endsWith('\n') && text !== '') await truncate(file, Buffer.byteLength(text.slice(0, text.lastIndexOf('\n') + 1)));
  for (const [i, line] of complete.entries()) {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      value = undefined;
    }
    const parsed = entrySchema.safeParse(value);
    if (!parsed.success) throw new AuditError('CR_AUDIT_UNREADABLE', `archive ledger ${file} line ${i + 1}: not a shipped-segment record`);
    shipped.set(parsed.data.segment, parsed.data);
  }
  let tail: Promise<void> = Promise.resolve();
  return {
    file,
    shipped,
    record(entry) {
      const write = async (): Promise<void> => {
        let fh;
        try {
          fh = await open(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
          await fh.appendFile(JSON.stringify(entry) + '\n', 'utf8');
          await fh.datasync();
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? 'error';
          throw new AuditError('CR_AUDIT_WRITE_FAILED', `archive ledger ${file}: write failed (${code})`, err);
        } finally {
          await fh?.close();
        }
        shipped.set(entry.segment, entry);
      };
      const next = tail.then(write, write);
      tail = next.catch(() => {});
      return next;
    },
  };
}
