import { createHash } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import { silentLogger } from '../log/logger.ts';
import type { ArchiveLedger } from './archiveLedger.ts';
import type { S3Location } from './checkpointShip.ts';
import { listClosedSegments, segmentSuffix, type ClosedSegment } from './segments.ts';

/** Options for {@link createSegmentArchiver}. */
export interface SegmentArchiverOptions {
  /** The S3 client (only `PutObject` is called). */
  client: Pick<S3Client, 'send'>;
  /** AUDIT_ARCHIVE_S3_URI: bucket and prefix; objects go to `<prefix><service>/`. */
  location: S3Location;
  /** Service name (the key's folder). */
  service: string;
  /** The trail's open segment (AUDIT_FILE): its closed segments are found next to it. */
  file: string;
  /** What was shipped before (survives restarts). */
  ledger: ArchiveLedger;
  /** AUDIT_ARCHIVE_KEEP_LOCAL: keep closed segments on disk after a confirmed upload (default); false removes them, except the newest. */
  keepLocal: boolean;
  /** First retry delay in ms, doubled per failure up to `maxRetryMs`. */
  retryMs?: number;
  /** Longest delay between retries in ms. */
  maxRetryMs?: number;
  /** pino logger; silent by default. */
  logger?: Logger;
  /** Clock (tests). */
  now?: () => Date;
}

/** Ships closed segments to S3, one at a time, retrying each until it is confirmed. */
export interface SegmentArchiver {
  /** Queues every closed segment on disk that the ledger does not hold (one closed while S3 was down, or before a restart). */
  start(): Promise<void>;
  /** Queues a segment that was just closed. */
  enqueue(segment: ClosedSegment): void;
  /** Segments waiting or being shipped. */
  pending(): number;
  /** Resolves when nothing is waiting (tests, shutdown reports). */
  idle(): Promise<void>;
  /** Stops retrying; what is not shipped yet is shipped after the next start. */
  close(): Promise<void>;
}

/** The object key of a closed segment: `<prefix><service>/<first seq>-<last seq>-<hash12>.jsonl` (a listing sorts by seq; no contents in the name). */
export function segmentObjectKey(location: S3Location, service: string, segment: ClosedSegment): string {
  return `${location.prefix}${service}/${segmentSuffix(segment.first, segment.last, segment.hashPrefix)}`;
}

/**
 * Creates the archiver of a service. Each segment is uploaded with its SHA-256 checksum
 * (S3 rejects a body that does not match) and `If-None-Match: *` (never over an existing
 * object); a confirmed upload is recorded in the ledger before the local copy may be removed.
 * An object S3 reports as already there is recorded as such and its local copy is kept.
 */
export function createSegmentArchiver(options: SegmentArchiverOptions): SegmentArchiver {
  const log = options.logger ?? silentLogger;
  const now = options.now ?? (() => new Date());
  const retryMs = options.retryMs ?? 1_000;
  const maxRetryMs = options.maxRetryMs ?? 300_000;
  const queue: ClosedSegment[] = [];
  const queued = new Set<string>();
  let running: Promise<void> | undefined;
  let closed = false;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let idleWaiters: Array<() => void> = [];
  // Aborts an upload in flight at close, so a stop never waits on an unreachable S3.
  const abort = new AbortController();

  const delay = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
      timer.unref();
    });

  async function ship(segment: ClosedSegment): Promise<'shipped' | 'existing'> {
    const body = await readFile(segment.path);
    const sha = createHash('sha256').update(body);
    const key = segmentObjectKey(options.location, options.service, segment);
    const hex = sha.copy().digest('hex');
    let existing = false;
    try {
      await options.client.send(
        new PutObjectCommand({
          Bucket: options.location.bucket,
          Key: key,
          Body: body,
          ContentType: 'application/x-ndjson',
          ChecksumSHA256: sha.digest('base64'),
          IfNoneMatch: '*',
        }),
        { abortSignal: abort.signal },
      );
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status !== 412) throw err;
      existing = true;
    }
    await options.ledger.record({ segment: basename(segment.path), key, sha256: hex, at: now().toISOString(), ...(existing ? { existing } : {}) });
    return existing ? 'existing' : 'shipped';
  }

  /** Removes local closed segments whose upload was confirmed, always keeping the newest (the chain continues from it at start). */
  async function prune(): Promise<void> {
    if (options.keepLocal) return;
    const onDisk = await listClosedSegments(options.file);
    for (const segment of onDisk.slice(0, -1)) {
      const entry = options.ledger.shipped.get(basename(segment.path));
      if (!entry || entry.existing || queued.has(segment.path)) continue;
      await unlink(segment.path).catch((err: NodeJS.ErrnoException) => log.warn({ segment: basename(segment.path), code: err.code }, 'audit segment not removed'));
    }
  }

  async function drain(): Promise<void> {
    while (!closed && queue.length > 0) {
      const segment = queue[0]!;
      let wait = retryMs;
      for (let attempt = 1; !closed; attempt++) {
        try {
          const outcome = await ship(segment);
          if (outcome === 'existing') log.warn({ segment: basename(segment.path) }, 'audit segment already in the archive: recorded, local copy kept');
          else log.info({ segment: basename(segment.path), first: segment.first, last: segment.last }, 'audit segment archived');
          break;
        } catch (err) {
          if (closed) break;
          const code = (err as { code?: string; name?: string }).code ?? (err as Error).name;
          log.warn({ segment: basename(segment.path), attempt, code, retryInMs: wait }, 'audit segment not archived, will retry');
          await delay(wait);
          wait = Math.min(wait * 2, maxRetryMs);
        }
      }
      if (closed) break;
      queue.shift();
      queued.delete(segment.path);
      await prune().catch((err: unknown) => log.warn({ code: (err as { code?: string }).code }, 'audit segments not pruned'));
    }
    running = undefined;
    if (queue.length === 0) {
      for (const done of idleWaiters) done();
      idleWaiters = [];
    }
  }

  const enqueue = (segment: ClosedSegment): void => {
    if (closed || queued.has(segment.path) || options.ledger.shipped.has(basename(segment.path))) return;
    queued.add(segment.path);
    queue.push(segment);
    running ??= drain();
  };

  return {
    async start() {
      for (const segment of await listClosedSegments(options.file)) enqueue(segment);
      running ??= prune().then(() => drain());
    },
    enqueue,
    pending: () => queue.length,
    idle() {
      if (queue.length === 0 && !running) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    async close() {
      closed = true;
      abort.abort();
      clearTimeout(timer);
      wake?.();
      await running;
      for (const done of idleWaiters) done();
      idleWaiters = [];
    },
  };
}
