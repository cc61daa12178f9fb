import {
  CreateBucketCommand,
  PutBucketLifecycleConfigurationCommand,
  PutPublicAccessBlockCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

/** Options for {@link ensureObjectBucket}. */
export interface EnsureBucketOptions {
  /** Bucket name (LARGE_OBJECT_BUCKET). */
  bucket: string;
  /** Region (a bucket outside us-east-1 names its location). */
  region: string;
  /** Days after which any object is deleted: the queue retention, rounded up, plus one. */
  expireAfterDays: number;
}

function alreadyThere(err: unknown): boolean {
  const name = (err as { name?: string }).name;
  return name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists';
}

/** The lifecycle backstop: expire every object after `days`, abort unfinished multipart uploads after one day. */
export function lifecycleRules(days: number) {
  return {
    Rules: [
      { ID: 'care-relay-expire', Status: 'Enabled' as const, Filter: { Prefix: '' }, Expiration: { Days: days } },
      { ID: 'care-relay-abort-multipart', Status: 'Enabled' as const, Filter: { Prefix: '' }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } },
    ],
  };
}

/**
 * Creates the large-object bucket if needed (idempotent), blocks public access and sets the
 * lifecycle backstop: objects are deleted once acknowledged, and whatever is left (a crash
 * between ack and delete) expires after the queue retention.
 */
export async function ensureObjectBucket(client: S3Client, options: EnsureBucketOptions): Promise<void> {
  try {
    await client.send(
      new CreateBucketCommand({
        Bucket: options.bucket,
        ...(options.region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: options.region as never } }),
      }),
    );
  } catch (err) {
    if (!alreadyThere(err)) throw err;
  }
  try {
    await client.send(
      new PutPublicAccessBlockCommand({
        Bucket: options.bucket,
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true },
      }),
    );
  } catch (err) {
    // Emulators without the call (fauxqs) have no public access to block.
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === undefined || status < 400 || status === 403) throw err;
  }
  await client.send(new PutBucketLifecycleConfigurationCommand({ Bucket: options.bucket, LifecycleConfiguration: lifecycleRules(options.expireAfterDays) }));
}

/** Days of the lifecycle rule for a queue retention in seconds: rounded up, plus one. */
export function expiryDays(retentionSeconds: number): number {
  return Math.ceil(retentionSeconds / 86_400) + 1;
}
