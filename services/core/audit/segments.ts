import { open, readdir, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { GENESIS_HASH, parseEntryLine, type AuditEntry } from './chain.ts';
import { AuditError } from './errors.ts';
import type { ChainHead } from './verify.ts';

/** A closed segment of a trail: its lines from seq `first` to `last`, the last with hash `hash`. */
export interface ClosedSegment {
  /** Path of the file. */
  path: string;
  /** seq of its first line. */
  first: number;
  /** seq of its last line. */
  last: number;
  /** The first 12 hex digits of its last line's hash (in the name, so a swapped or cut segment shows). */
  hashPrefix: string;
}

const SEQ_DIGITS = 12;
/** `<first seq>-<last seq>-<12 hex of the last hash>.jsonl`: the end of every closed segment's name. */
const SEGMENT_SUFFIX = /(?:^|\.)(\d{12})-(\d{12})-([0-9a-f]{12})\.jsonl$/;

/** The part of a closed segment's name after the trail's stem: `000000000001-000000000500-<hash12>.jsonl` (seq numbers and a hash, nothing else). */
export function segmentSuffix(first: number, last: number, lastHash: string): string {
  const pad = (n: number): string => String(n).padStart(SEQ_DIGITS, '0');
  return `${pad(first)}-${pad(last)}-${lastHash.slice(0, 12)}.jsonl`;
}

/** The stem closed segments of a trail file share: `app-audit.jsonl` → `app-audit.` */
function stemOf(file: string): string {
  return `${basename(file).replace(/\.jsonl$/, '')}.`;
}

/** Where a trail's segment from `first` to `last` goes when it is closed: next to the trail, named by the trail's stem and {@link segmentSuffix}. */
export function closedSegmentPath(file: string, first: number, last: number, lastHash: string): string {
  return join(dirname(file), stemOf(file) + segmentSuffix(first, last, lastHash));
}

/** Reads the seq range and hash prefix from a segment's name (local or as stored in S3); undefined when it is not one. */
export function parseSegmentName(path: string): ClosedSegment | undefined {
  const match = SEGMENT_SUFFIX.exec(basename(path));
  if (!match) return undefined;
  return { path, first: Number(match[1]), last: Number(match[2]), hashPrefix: match[3]! };
}

/** The closed segments of a trail file that are on disk next to it, in seq order. */
export async function listClosedSegments(file: string): Promise<ClosedSegment[]> {
  const dir = dirname(file);
  const stem = stemOf(file);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOENT') return [];
    throw new AuditError('CR_AUDIT_UNREADABLE', `audit folder ${dir}: cannot list (${code})`, err);
  }
  const segments: ClosedSegment[] = [];
  for (const name of names) {
    if (!name.startsWith(stem)) continue;
    const rest = name.slice(stem.length);
    const parsed = parseSegmentName(rest);
    if (parsed && rest === segmentSuffix(parsed.first, parsed.last, parsed.hashPrefix)) segments.push({ ...parsed, path: join(dir, name) });
  }
  return sortSegments(segments);
}

/** Segments ordered by their first seq (then last seq), as the names say. */
export function sortSegments<T extends ClosedSegment>(segments: T[]): T[] {
  return segments.sort((a, b) => a.first - b.first || a.last - b.last);
}

/** The longest last line a trail will read back when continuing a chain. */
const MAX_TAIL_LINE = 1024 * 1024;

/** The last line of a trail or segment, checked on its own (shape and own hash): its entry, or genesis for an empty or missing file. */
export async function readChainTail(file: string): Promise<ChainHead & { entry?: AuditEntry }> {
  const broken = (why: string): AuditError =>
    new AuditError(
      'CR_AUDIT_TAIL_BROKEN',
      `audit trail ${file}: cannot continue the chain, ${why}; run "care-relay audit verify" and archive the file`,
    );
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { seq: 0, hash: GENESIS_HASH };
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
    const parsed = parseEntryLine(Buffer.concat(parts).toString('utf8'));
    if ('reason' in parsed) throw broken(`the last line is invalid (${parsed.reason})`);
    return { seq: parsed.entry.seq, hash: parsed.entry.hash, entry: parsed.entry };
  } finally {
    await fh.close();
  }
}

/** The first line of a trail or segment (its seq and when the segment began), or undefined for an empty or missing file or a bad first line. */
export async function readFirstEntry(file: string): Promise<AuditEntry | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.alloc(MAX_TAIL_LINE);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
    if (nl < 0) return undefined;
    const parsed = parseEntryLine(buf.subarray(0, nl).toString('utf8'));
    return 'reason' in parsed ? undefined : parsed.entry;
  } finally {
    await fh.close();
  }
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? 'error';
}
