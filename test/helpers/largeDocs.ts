import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { ensureObjectBucket } from '../../services/core/objects/bucket.ts';
import { startTestSqs, type TestSqs } from './sqs.ts';
import { suiteFixture } from './suiteFixture.ts';

/** Planted PHI in every large test document: it must reach no log or audit line. */
export const LARGE_DOC_PHI = 'Zebulon Quackenbush-LARGE MRN-LG-99812';

const BASE = Buffer.from(createHash('sha512').update('care-relay').digest('hex').repeat(512));

/**
 * A C-CDA-shaped XML document of exactly `bytes` bytes, generated as a stream (64 KiB at a
 * time, never held whole) with planted PHI; `sha256` resolves once it has been read through.
 */
export function largeDocument(bytes: number, seed = 1): { stream: Readable; sha256: Promise<string> } {
  const head = Buffer.from(`<?xml version="1.0"?><ClinicalDocument><patient>${LARGE_DOC_PHI}</patient><text>`);
  const tail = Buffer.from('</text></ClinicalDocument>');
  if (bytes < head.length + tail.length) throw new RangeError('document too small');
  const hash = createHash('sha256');
  let resolve!: (hex: string) => void;
  const sha256 = new Promise<string>((r) => (resolve = r));
  let filler = bytes - head.length - tail.length;
  let counter = seed;
  let started = false;
  const stream = new Readable({
    read() {
      let chunk: Buffer;
      if (!started) {
        started = true;
        chunk = head;
      } else if (filler > 0) {
        // Text that varies block to block (a numbered copy of a base block), so a swapped block changes the digest.
        const n = Math.min(filler, BASE.length);
        const block = Buffer.from(BASE.subarray(0, n));
        block.write((counter++).toString(16).padStart(16, '0').slice(0, n), 'latin1');
        filler -= n;
        chunk = block;
      } else if (tail.length > 0 && !this.readableEnded) {
        hash.update(tail);
        resolve(hash.digest('hex'));
        this.push(tail);
        this.push(null);
        return;
      } else {
        return;
      }
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, sha256 };
}

/** A bare HTTP response: status, headers, and the body's size and SHA-256 (never kept whole). */
export interface StreamedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  bytes: number;
  sha256: string;
  /** The body as text when it is small (problem documents). */
  text: string;
  /** True when the connection broke before the body was complete. */
  aborted: boolean;
}

/** Sends one HTTP request with a streamed body and reads the response as a stream. */
export function streamRequest(url: string, options: { method: string; headers?: Record<string, string | number>; body?: Readable }): Promise<StreamedResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method, headers: options.headers }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      const small: Buffer[] = [];
      let aborted = false;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
        if (bytes <= 64 * 1024) small.push(chunk);
      });
      res.on('aborted', () => (aborted = true));
      res.on('error', () => (aborted = true));
      res.on('close', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, sha256: hash.digest('hex'), text: Buffer.concat(small).toString('utf8'), aborted: aborted || !res.complete }),
      );
    });
    req.on('error', reject);
    if (options.body) options.body.pipe(req);
    else req.end();
  });
}

/** A bucket of {@link testBucket}. */
export interface TestBucket {
  bucket: string;
  client: S3Client;
  /** The services' environment for it. */
  env: Record<string, string>;
  keys(prefix?: string): Promise<string[]>;
  stop(): void;
}

/** A fresh bucket on the test's S3 (the emulator's), created like `care-relay queues init` does; and its client. */
export async function testBucket(sqs: TestSqs): Promise<TestBucket> {
  const bucket = `${sqs.prefix.replace(/[^a-z0-9]/g, '')}-objects`;
  const client = new S3Client({ endpoint: sqs.endpoint, region: sqs.region, forcePathStyle: true, credentials: { accessKeyId: 'dev', secretAccessKey: 'dev' } });
  await ensureObjectBucket(client, { bucket, region: sqs.region, expireAfterDays: 5 });
  return {
    bucket,
    client,
    env: { LARGE_OBJECT_BUCKET: bucket, LARGE_OBJECT_S3_ENDPOINT: sqs.endpoint },
    async keys(prefix = '') {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (out.Contents ?? []).map((o) => o.Key!);
    },
    stop: () => client.destroy(),
  };
}

/** For a suite: the emulator and a fresh bucket, started before its tests and stopped after them (read it inside tests). */
export function useTestBucket(): { readonly sqs: TestSqs; readonly bucket: TestBucket } {
  return suiteFixture(
    'the test bucket',
    async () => {
      const sqs = await startTestSqs();
      return { sqs, bucket: await testBucket(sqs) };
    },
    async ({ sqs, bucket }) => {
      bucket.stop();
      await sqs.stop();
    },
  );
}

/** An S3 client on the test's emulator that records each command it sends (`UploadPartCommand 2` for a part). */
export function recordingS3Client(sqs: TestSqs): { client: S3Client; commands: string[] } {
  const commands: string[] = [];
  const client = new S3Client({ endpoint: sqs.endpoint, region: sqs.region, forcePathStyle: true, credentials: { accessKeyId: 'dev', secretAccessKey: 'dev' } });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { PartNumber?: number };
      commands.push(`${String(context.commandName)}${input.PartNumber ? ` ${input.PartNumber}` : ''}`);
      return next(args);
    },
    { step: 'initialize' },
  );
  return { client, commands };
}
