import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { SignedCheckpoint } from './checkpoint.ts';
import type { CheckpointSink } from './checkpointer.ts';

/** Where checkpoints are copied off the host: an S3 bucket and key prefix. */
export interface S3Location {
  /** Bucket name. */
  bucket: string;
  /** Key prefix ('' or ending in `/`). */
  prefix: string;
}

/** Parses `s3://bucket/prefix`; returns undefined when it is not one. */
export function parseS3Uri(uri: string): S3Location | undefined {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(uri);
  if (!match) return undefined;
  const rest = match[2] ?? '';
  return { bucket: match[1]!, prefix: rest === '' || rest.endsWith('/') ? rest : `${rest}/` };
}

/** The object key of a checkpoint: `<prefix><service>/<seq, 12 digits>-<at>.json`, so a listing sorts by seq. */
export function checkpointObjectKey(location: S3Location, signed: SignedCheckpoint): string {
  const { service, seq, at } = signed.checkpoint;
  return `${location.prefix}${service}/${String(seq).padStart(12, '0')}-${at.replace(/[:.]/g, '')}.json`;
}

/**
 * A sink that writes each signed checkpoint as one object (one JSON line, as in the checkpoint
 * file). With S3 Object Lock or a bucket policy that denies delete and overwrite, a host that is
 * taken over cannot remove them.
 */
export function s3CheckpointSink(client: S3Client, location: S3Location): CheckpointSink {
  return async (signed) => {
    await client.send(
      new PutObjectCommand({
        Bucket: location.bucket,
        Key: checkpointObjectKey(location, signed),
        Body: JSON.stringify(signed) + '\n',
        ContentType: 'application/json',
        // Never overwrite an existing checkpoint object.
        IfNoneMatch: '*',
      }),
    );
  };
}
