import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';

/** Where {@link uploadInParts} writes, and the object's headers (content type, server-side encryption). */
export interface PartsTarget {
  /** Bucket. */
  Bucket: string;
  /** Object key. */
  Key: string;
  /** Media type of the object. */
  ContentType: string;
  /** `aws:kms` with SSE-KMS. */
  ServerSideEncryption?: 'aws:kms';
  /** SSE-KMS key id or ARN. */
  SSEKMSKeyId?: string;
}

/**
 * Streams `body` into one S3 object with bounded, fixed memory: two part buffers of `partBytes`,
 * allocated once per upload and reused, one uploading while the other fills; the source is not
 * read while both are taken, so backpressure reaches it. A body that fits in one part is one
 * PutObject; a longer one a multipart upload (checksummed as the client's
 * requestChecksumCalculation asks), aborted on any failure so that no part stays behind.
 * With `ifAbsent`, the object is written only where none exists (`If-None-Match: *` on the
 * PutObject or CompleteMultipartUpload): another upload's object is never replaced, and S3 answers
 * 412 instead (this upload's parts are then aborted like on any failure).
 * Resolves with the object's ETag; on failure rejects with the first error seen.
 */
export async function uploadInParts(client: S3Client, target: PartsTarget, body: Readable, partBytes: number, options: { ifAbsent?: boolean } = {}): Promise<string> {
  const condition = options.ifAbsent ? { IfNoneMatch: '*' } : {};
  const checksum = (await client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED' ? { ChecksumAlgorithm: ChecksumAlgorithm.CRC32 } : {};
  const buffers: Buffer[] = [Buffer.allocUnsafe(partBytes)];
  const parts: CompletedPart[] = [];
  let current = 0;
  let filled = 0;
  let uploadId: string | undefined;
  let inFlight: Promise<void> | undefined;

  const uploadPart = async (data: Buffer, partNumber: number): Promise<void> => {
    if (uploadId === undefined) {
      const created = await client.send(new CreateMultipartUploadCommand({ ...target, ...checksum }));
      uploadId = created.UploadId;
      if (!uploadId) throw new Error('CreateMultipartUpload returned no UploadId');
    }
    const out = await client.send(new UploadPartCommand({ Bucket: target.Bucket, Key: target.Key, UploadId: uploadId, PartNumber: partNumber, Body: data, ContentLength: data.length, ...checksum }));
    if (!out.ETag) throw new Error(`UploadPart ${partNumber} returned no ETag`);
    parts.push({ PartNumber: partNumber, ETag: out.ETag, ...(out.ChecksumCRC32 ? { ChecksumCRC32: out.ChecksumCRC32 } : {}) });
  };
  try {
    let partNumber = 0;
    // A full buffer is sent only once more bytes arrive, so the last part is known to be the last.
    const next = async (): Promise<void> => {
      await inFlight;
      partNumber += 1;
      const sent = uploadPart(buffers[current]!, partNumber);
      sent.catch(() => undefined);
      inFlight = sent;
      current ^= 1;
      buffers[current] ??= Buffer.allocUnsafe(partBytes);
      filled = 0;
    };
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      let offset = 0;
      while (offset < chunk.length) {
        if (filled === partBytes) await next();
        const n = Math.min(chunk.length - offset, partBytes - filled);
        buffers[current]!.set(chunk.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
      }
    }
    const last = buffers[current]!.subarray(0, filled);
    if (partNumber === 0) {
      const put = await client.send(new PutObjectCommand({ ...target, Body: last, ContentLength: last.length, ...condition }));
      return String(put.ETag ?? '');
    }
    await inFlight;
    await uploadPart(last, partNumber + 1);
    parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
    const done = await client.send(new CompleteMultipartUploadCommand({ Bucket: target.Bucket, Key: target.Key, UploadId: uploadId, MultipartUpload: { Parts: parts }, ...condition }));
    return String(done.ETag ?? '');
  } catch (err) {
    // A part still on its way may land after an abort: let it settle first.
    await inFlight?.catch(() => undefined);
    if (uploadId !== undefined) await client.send(new AbortMultipartUploadCommand({ Bucket: target.Bucket, Key: target.Key, UploadId: uploadId })).catch(() => undefined);
    throw err;
  }
}
