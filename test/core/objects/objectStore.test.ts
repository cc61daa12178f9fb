import { Readable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createObjectStore } from '../../../services/core/objects/objectStore.ts';
import { testBucket } from '../../helpers/largeDocs.ts';
import { startTestSqs, type TestSqs } from '../../helpers/sqs.ts';

const MiB = 1024 * 1024;
let sqs: TestSqs;
let bucket: Awaited<ReturnType<typeof testBucket>>;

beforeAll(async () => {
  sqs = await startTestSqs();
  bucket = await testBucket(sqs);
});
afterAll(async () => {
  bucket?.stop();
  await sqs?.stop();
});

/** An S3 client that records the name of every command it sends. */
function recordingClient(): { client: S3Client; commands: string[] } {
  const commands: string[] = [];
  const client = new S3Client({ endpoint: sqs.endpoint, region: sqs.region, forcePathStyle: true, credentials: { accessKeyId: 'dev', secretAccessKey: 'dev' } });
  client.middlewareStack.add((next, context) => async (args) => {
    commands.push(String(context.commandName));
    return next(args);
  }, { step: 'initialize' });
  return { client, commands };
}

/** `good` bytes, then the stream fails (a client that went away). */
function failingAfter(good: number): Readable {
  let left = good;
  return new Readable({
    read() {
      if (left <= 0) return this.destroy(new Error('client went away'));
      const n = Math.min(left, 256 * 1024);
      left -= n;
      this.push(Buffer.alloc(n, 'y'));
    },
  });
}

describe('object store', () => {
  it('aborts the multipart upload when its source fails: no object, no parts left', async () => {
    const { client, commands } = recordingClient();
    const store = createObjectStore({ client, bucket: bucket.bucket });
    await expect(store.upload('t/broken.pgp', failingAfter(12 * MiB))).rejects.toThrow();
    expect(commands).toContain('CreateMultipartUploadCommand');
    expect(commands).toContain('AbortMultipartUploadCommand');
    expect(commands).not.toContain('CompleteMultipartUploadCommand');
    expect(await bucket.keys('t/')).toEqual([]);
    client.destroy();
  }, 60_000);

  it('aborts when the caller\'s signal fires mid-upload', async () => {
    const { client, commands } = recordingClient();
    const store = createObjectStore({ client, bucket: bucket.bucket });
    const abort = new AbortController();
    let sent = 0;
    const source = new Readable({
      read() {
        sent += 1024 * 1024;
        if (sent > 11 * MiB) abort.abort();
        this.push(Buffer.alloc(1024 * 1024, 'z'));
      },
    });
    await expect(store.upload('t/aborted.pgp', source, abort.signal)).rejects.toThrow();
    expect(commands).toContain('AbortMultipartUploadCommand');
    expect(await bucket.keys('t/')).toEqual([]);
    client.destroy();
  }, 60_000);

  it('reads an object back, and only the version it was given (ETag)', async () => {
    const store = createObjectStore({ client: bucket.client, bucket: bucket.bucket });
    const etag = await store.upload('u/one.pgp', Readable.from([Buffer.from('first')]));
    const read = await store.read('u/one.pgp', etag);
    expect(read.status).toBe('found');
    await store.upload('u/one.pgp', Readable.from([Buffer.from('second')]));
    expect((await store.read('u/one.pgp', etag)).status).toBe('missing');
    await store.remove('u/one.pgp');
    expect((await store.read('u/one.pgp')).status).toBe('missing');
  });
});
