import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { uploadInParts } from '../../../services/core/objects/multipartUpload.ts';
import { PART_BYTES } from '../../../services/core/objects/objectStore.ts';
import { recordingS3Client, useTestBucket } from '../../helpers/largeDocs.ts';

const fixture = useTestBucket();
const recordingClient = () => recordingS3Client(fixture.sqs);

/** `bytes` random bytes in chunks of odd sizes (no chunk lines up with a part), and their SHA-256. */
function randomSource(bytes: number): { stream: Readable; sha256: string } {
  const data = randomBytes(bytes);
  const chunks: Buffer[] = [];
  for (let at = 0, n = 0; at < data.length; n += 1) {
    const size = [65_537, 1, 300_001, 4_093][n % 4]!;
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  return { stream: Readable.from(chunks), sha256: createHash('sha256').update(data).digest('hex') };
}

async function storedSha256(client: S3Client, key: string): Promise<{ sha256: string; bytes: number }> {
  const out = await client.send(new GetObjectCommand({ Bucket: fixture.bucket.bucket, Key: key }));
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of out.Body as Readable) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

describe('uploadInParts (two reused part buffers)', () => {
  const target = (key: string) => ({ Bucket: fixture.bucket.bucket, Key: key, ContentType: 'application/pgp-encrypted' });

  it.each([
    ['empty', 0, ['PutObjectCommand']],
    ['exactly one part', PART_BYTES, ['PutObjectCommand']],
    ['one byte past one part', PART_BYTES + 1, ['CreateMultipartUploadCommand', 'UploadPartCommand 1', 'UploadPartCommand 2', 'CompleteMultipartUploadCommand']],
  ])('%s: one PutObject when it fits in a part, a multipart upload otherwise', async (name, bytes, expected) => {
    const { client, commands } = recordingClient();
    const source = randomSource(bytes);
    const key = `mp/${name.replaceAll(' ', '-')}.pgp`;
    await uploadInParts(client, target(key), source.stream, PART_BYTES);
    expect(commands).toEqual(expected);
    expect(await storedSha256(client, key)).toEqual({ sha256: source.sha256, bytes });
    client.destroy();
  }, 60_000);

  it('each part keeps its own bytes although the two buffers are reused (five parts, the last a short one)', async () => {
    const { client, commands } = recordingClient();
    const bytes = 4 * PART_BYTES + 12_345;
    const source = randomSource(bytes);
    await uploadInParts(client, target('mp/five.pgp'), source.stream, PART_BYTES);
    expect(commands.filter((c) => c.startsWith('UploadPartCommand'))).toEqual([1, 2, 3, 4, 5].map((n) => `UploadPartCommand ${n}`));
    expect(await storedSha256(client, 'mp/five.pgp')).toEqual({ sha256: source.sha256, bytes });
    client.destroy();
  }, 120_000);

  it('does not read the source past the two buffers while a part is still uploading (backpressure)', async () => {
    const { client } = recordingClient();
    let read = 0;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    // The first part's upload is held until the check below.
    client.middlewareStack.add((next, context) => async (args) => {
      if (context.commandName === 'UploadPartCommand' && (args.input as { PartNumber: number }).PartNumber === 1) await held;
      return next(args);
    }, { step: 'initialize' });
    const source = new Readable({
      read() {
        if (read >= 6 * PART_BYTES) return this.push(null);
        read += 64 * 1024;
        this.push(Buffer.alloc(64 * 1024, read % 251));
      },
    });
    const done = uploadInParts(client, target('mp/held.pgp'), source, PART_BYTES);
    const deadline = Date.now() + 30_000;
    while (read < 2 * PART_BYTES && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    // Give the source every chance to be read further while part 1 is held.
    for (let i = 0; i < 200; i += 1) await new Promise((r) => setImmediate(r));
    // Part 1 in its buffer, part 2 filled in the other, plus what the stream buffers itself.
    expect(read).toBeGreaterThanOrEqual(2 * PART_BYTES);
    expect(read).toBeLessThanOrEqual(2 * PART_BYTES + source.readableHighWaterMark + 2 * 64 * 1024);
    release();
    await done;
    expect(read).toBe(6 * PART_BYTES);
    client.destroy();
  }, 120_000);
});
