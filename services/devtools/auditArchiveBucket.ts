// The bucket `care-relay dev` ships closed audit segments to: on the emulator's in-process S3,
// as a production deployment ships them to an S3 bucket with Object Lock (docs/deploy.md).
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

/** Bucket of the dev audit archive. */
export const DEV_AUDIT_BUCKET = 'care-relay-audit';

/** Segments a megabyte each in dev: small enough for the emulator's request limit, and to see rotation happen. */
const DEV_ROTATE_BYTES = 1_048_576;

/**
 * Creates the archive bucket on the emulator (idempotent) and returns the environment that
 * makes a service ship its closed segments there. AUDIT_ROTATE_BYTES from `env` wins.
 */
export async function ensureDevAuditArchive(endpoint: string, credentials: { accessKeyId: string; secretAccessKey: string }, env: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
  try {
    await s3.send(new CreateBucketCommand({ Bucket: DEV_AUDIT_BUCKET }));
  } finally {
    s3.destroy();
  }
  return {
    AUDIT_ARCHIVE_S3_URI: `s3://${DEV_AUDIT_BUCKET}/segments`,
    AUDIT_ARCHIVE_S3_ENDPOINT: endpoint,
    AUDIT_ROTATE_BYTES: env.AUDIT_ROTATE_BYTES ?? String(DEV_ROTATE_BYTES),
  };
}
