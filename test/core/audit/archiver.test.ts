import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, type PutObjectCommand } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openArchiveLedger } from '../../../services/core/audit/archiveLedger.ts';
import { createSegmentArchiver, type SegmentArchiver } from '../../../services/core/audit/archiver.ts';
import { openAuditLog, type AuditLog } from '../../../services/core/audit/auditLog.ts';
import { parseS3Uri } from '../../../services/core/audit/checkpointShip.ts';
import { listClosedSegments, type ClosedSegment } from '../../../services/core/audit/segments.ts';
import { startSqsEmulator, type SqsEmulator } from '../../../services/devtools/sqsEmulator.ts';
import { captureLogger } from '../../helpers/logs.ts';
import { freePort } from '../../helpers/processes.ts';
import { waitFor } from '../../helpers/wait.ts';

const PHI = 'Jane Q Patient 555-867-5309';
const BUCKET = 'audit-archive';
const location = parseS3Uri(`s3://${BUCKET}/segments`)!;

let dir: string;
let file: string;
let emulator: SqsEmulator | undefined;
let s3: S3Client;
let port: number;
const archivers: SegmentArchiver[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-archive-'));
  file = join(dir, 'app-audit.jsonl');
  port = await freePort();
  s3 = new S3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'dev', secretAccessKey: 'dev' }, maxAttempts: 1 });
});
afterEach(async () => {
  await Promise.all(archivers.splice(0).map((a) => a.close()));
  s3.destroy();
  await emulator?.stop();
  emulator = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** S3 comes up (the emulator's in-process S3) on the port the archiver was given. */
async function s3Up(): Promise<void> {
  emulator = await startSqsEmulator({ port });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
}

/** The archiver's S3 client: the real one, recording the key of each PutObject it sends. */
function recordingClient(puts: string[]): Pick<S3Client, 'send'> {
  return { send: ((command: PutObjectCommand) => (puts.push(command.input.Key!), s3.send(command))) as S3Client['send'] };
}

async function archiver(puts: string[], keepLocal = true): Promise<SegmentArchiver> {
  const logs = captureLogger('app');
  const a = createSegmentArchiver({ client: recordingClient(puts), location, service: 'app', file, ledger: await openArchiveLedger(`${file}.archived`), keepLocal, retryMs: 20, maxRetryMs: 100, logger: logs.logger });
  archivers.push(a);
  return Object.assign(a, { logs });
}

/** A trail with `n` closed segments of one line each (and the PHI a careless name or metadata would leak). */
async function trail(n: number, onClosed?: (s: ClosedSegment) => void): Promise<AuditLog> {
  const log = await openAuditLog({ file, service: 'app', rotation: { maxBytes: 1 }, onRotation: (e) => void ('closed' in e && onClosed?.(e.closed)) });
  for (let i = 1; i <= n; i++) await log.record({ action: 'inbox.read', actor: PHI, resourceType: 'inbox-record', resourceId: `r${i}`, outcome: 'success', details: { note: PHI } });
  return log;
}

async function listed(): Promise<string[]> {
  const r = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'segments/app/' }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}

describe('shipping closed segments to S3 (the emulator\'s in-process S3)', () => {
  it('uploads each closed segment once, byte for byte with its SHA-256 checksum, under <prefix>/<service>/<seq range>; no PHI in keys or metadata', async () => {
    await s3Up();
    const puts: string[] = [];
    const a = await archiver(puts);
    await a.start();
    const log = await trail(3, (s) => a.enqueue(s));
    await log.close();
    await a.idle();
    const segments = await listClosedSegments(file);
    expect(segments).toHaveLength(3);
    const keys = await listed();
    expect(keys).toEqual(segments.map((s) => `segments/app/${basename(s.path).replace('app-audit.', '')}`));
    expect(puts.sort()).toEqual(keys);
    for (const [i, key] of keys.entries()) {
      expect(key).toMatch(/^segments\/app\/\d{12}-\d{12}-[0-9a-f]{12}\.jsonl$/);
      const local = await readFile(segments[i]!.path);
      const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, ChecksumMode: 'ENABLED' }));
      expect(Buffer.from(await object.Body!.transformToByteArray())).toEqual(local);
      expect(object.ChecksumSHA256).toBe(createHash('sha256').update(local).digest('base64'));
      const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      expect(JSON.stringify(head.Metadata ?? {})).not.toContain('Jane');
    }
    const ledger = (await readFile(`${file}.archived`, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as { segment: string; key: string });
    expect(ledger.map((e) => e.key).sort()).toEqual(keys);
    expect(await readFile(`${file}.archived`, 'utf8')).not.toContain('Jane');
    expect((a as unknown as { logs: { lines: string[] } }).logs.lines.join('\n')).not.toContain('Jane');
    // Kept locally by default.
    expect((await listClosedSegments(file)).length).toBe(3);
  });

  it('S3 down then up: retries until the upload succeeds, and a segment closed while S3 was down is shipped after a restart, none twice', async () => {
    const puts: string[] = [];
    const first = await archiver(puts);
    await first.start();
    const log = await trail(2, (s) => first.enqueue(s));
    const logs = (first as unknown as { logs: ReturnType<typeof captureLogger> }).logs;
    // The second segment's `closed` event may come after the first retries (a loaded machine).
    await waitFor(() => first.pending() === 2, { what: 'both closed segments queued', timeoutMs: 20_000 });
    await waitFor(() => logs.entries().filter((e) => e.msg === 'audit segment not archived, will retry').length >= 2, { what: 'retries while S3 is down', timeoutMs: 20_000 });
    expect(first.pending(), 'nothing dropped while S3 is down').toBe(2);
    // The service stops while S3 is down; a third segment closes meanwhile (nothing is shipping it).
    await first.close();
    await log.record({ action: 'inbox.read', actor: 'reader-1', resourceType: 'inbox-record', outcome: 'success' });
    await log.close();
    expect(await readFile(`${file}.archived`, 'utf8').catch(() => '')).toBe('');

    const second = await archiver(puts);
    await second.start();
    await s3Up();
    await waitFor(async () => (await listed()).length === 3, { what: 'all three segments in S3', timeoutMs: 20_000 });
    await second.idle();
    await second.close();
    const shippedOnce = puts.filter((k, i) => puts.indexOf(k) === i);

    // A third start finds everything in the ledger: nothing is sent again.
    const sent = puts.length;
    const third = await archiver(puts);
    await third.start();
    await third.idle();
    expect(puts.length).toBe(sent);
    expect(shippedOnce.sort()).toEqual(await listed());
  });

  it('with keep-local off, removes a closed segment only after its upload is confirmed, and always keeps the newest', async () => {
    const puts: string[] = [];
    const a = await archiver(puts, false);
    await a.start();
    const log = await trail(3, (s) => a.enqueue(s));
    await waitFor(() => puts.length >= 3, { what: 'upload attempts while S3 is down', timeoutMs: 20_000 });
    expect((await listClosedSegments(file)).length, 'nothing removed before a confirmed upload').toBe(3);
    await s3Up();
    await waitFor(async () => (await listed()).length === 3, { what: 'segments in S3', timeoutMs: 20_000 });
    await a.idle();
    const left = await listClosedSegments(file);
    expect(left.map((s) => s.last)).toEqual([3]);
    // The chain continues from the newest closed segment after a restart.
    await log.close();
    const again = await openAuditLog({ file, service: 'app' });
    expect(again.head().seq).toBe(3);
    await again.close();
  });

  it('an object that is already there (412: its ledger record was lost in a crash) is recorded as existing, and its local copy is kept', async () => {
    const log = await trail(2);
    await log.close();
    const calls: string[] = [];
    const conflict = Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), { name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } });
    const client = { send: (async (c: PutObjectCommand) => (calls.push(c.input.Key!), Promise.reject(conflict))) as unknown as S3Client['send'] };
    const a = createSegmentArchiver({ client, location, service: 'app', file, ledger: await openArchiveLedger(`${file}.archived`), keepLocal: false, retryMs: 20 });
    archivers.push(a);
    await a.start();
    await a.idle();
    expect(calls).toHaveLength(2);
    const ledger = (await readFile(`${file}.archived`, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as { existing?: boolean });
    expect(ledger.map((e) => e.existing)).toEqual([true, true]);
    expect((await listClosedSegments(file)).length).toBe(2);
  });

  it('close() does not wait on an upload that hangs (an unreachable S3): the upload is aborted and nothing is recorded', async () => {
    const log = await trail(1);
    await log.close();
    let started = 0;
    const client = {
      send: ((_c: PutObjectCommand, options: { abortSignal: AbortSignal }) => {
        started += 1;
        return new Promise((_resolve, reject) => options.abortSignal.addEventListener('abort', () => reject(new Error('aborted'))));
      }) as unknown as S3Client['send'],
    };
    const a = createSegmentArchiver({ client, location, service: 'app', file, ledger: await openArchiveLedger(`${file}.archived`), keepLocal: false });
    await a.start();
    await waitFor(() => started === 1, { what: 'the upload started' });
    await a.close();
    expect(a.pending()).toBe(1);
    expect(await readFile(`${file}.archived`, 'utf8').catch(() => '')).toBe('');
  });

  it('a ledger cut mid-line by a crash: the incomplete record is dropped and the segment shipped again', async () => {
    await writeFile(`${file}.archived`, '{"segment":"app-audit.000000000001-0000');
    const ledger = await openArchiveLedger(`${file}.archived`);
    expect(ledger.shipped.size).toBe(0);
    expect(await readFile(`${file}.archived`, 'utf8')).toBe('');
  });
});
