import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createObjectStore } from '../../../services/core/objects/objectStore.ts';
import { recordingS3Client, useTestBucket } from '../../helpers/largeDocs.ts';

const MiB = 1024 * 1024;
const fixture = useTestBucket();
const recordingClient = () => recordingS3Client(fixture.sqs);

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
    const store = createObjectStore({ client, bucket: fixture.bucket.bucket });
    await expect(store.upload('t/broken.pgp', failingAfter(12 * MiB))).rejects.toThrow();
    expect(commands).toContain('CreateMultipartUploadCommand');
    expect(commands).toContain('AbortMultipartUploadCommand');
    expect(commands).not.toContain('CompleteMultipartUploadCommand');
    expect(await fixture.bucket.keys('t/')).toEqual([]);
    client.destroy();
  }, 60_000);

  it('aborts when the caller\'s signal fires mid-upload', async () => {
    const { client, commands } = recordingClient();
    const store = createObjectStore({ client, bucket: fixture.bucket.bucket });
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
    expect(await fixture.bucket.keys('t/')).toEqual([]);
    client.destroy();
  }, 60_000);

  it('reads an object back, and only the version it was given (ETag)', async () => {
    const store = createObjectStore({ client: fixture.bucket.client, bucket: fixture.bucket.bucket });
    const etag = await store.upload('u/one.pgp', Readable.from([Buffer.from('first')]));
    const read = await store.read('u/one.pgp', etag);
    expect(read.status).toBe('found');
    await store.upload('u/one.pgp', Readable.from([Buffer.from('second')]));
    expect((await store.read('u/one.pgp', etag)).status).toBe('missing');
    await store.remove('u/one.pgp');
    expect((await store.read('u/one.pgp')).status).toBe('missing');
  });
});
