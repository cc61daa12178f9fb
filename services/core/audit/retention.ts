import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import type { AuditLog, OpenAuditLogOptions } from './auditLog.ts';
import type { SegmentArchiver } from './archiver.ts';
import type { Checkpointer } from './checkpointer.ts';

/** The retention settings of a service (from its config.ts); absent limits mean no rotation, absent keep-local means keep. */
export interface RetentionConfig {
  AUDIT_FILE: string;
  AWS_REGION: string;
  AUDIT_ROTATE_BYTES?: number | undefined;
  AUDIT_ROTATE_SECONDS?: number | undefined;
  AUDIT_ARCHIVE_S3_URI?: string | undefined;
  AUDIT_ARCHIVE_S3_ENDPOINT?: string | undefined;
  AUDIT_ARCHIVE_KEEP_LOCAL?: boolean | undefined;
}

/** Rotation and archiving of a service's trail, wired between the trail, its checkpointer and S3. */
export interface Retention {
  /** The trail's rotation options (pass to openAuditLog). */
  rotation: Pick<OpenAuditLogOptions, 'rotation' | 'onRotation'>;
  /** Starts the age check timer and ships what earlier runs left unshipped; `checkpoints` signs a checkpoint at each rotation. */
  start(audit: Pick<AuditLog, 'rotateIfDue'>, checkpoints: Pick<Checkpointer, 'checkpoint'>): Promise<void>;
  /** Stops the timer and the archiver (unshipped segments are shipped after the next start). */
  close(): Promise<void>;
}

/** Longest wait between two age checks of the open segment. */
const AGE_CHECK_MS = 60_000;

/**
 * Sets up segment rotation (AUDIT_ROTATE_BYTES, AUDIT_ROTATE_SECONDS) and, when
 * AUDIT_ARCHIVE_S3_URI is set, shipping of each closed segment to S3 (the S3 client is loaded
 * only then). A checkpoint is signed at each rotation, so the start check finds the newest
 * signed head at or after the last closed segment's end.
 */
export async function setUpRetention(config: RetentionConfig, service: string, logger: Logger): Promise<Retention> {
  let archiver: SegmentArchiver | undefined;
  let s3: S3Client | undefined;
  let checkpointer: Pick<Checkpointer, 'checkpoint'> | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (config.AUDIT_ARCHIVE_S3_URI) {
    const { parseS3Uri } = await import('./checkpointShip.ts');
    const { createSegmentArchiver } = await import('./archiver.ts');
    const { openArchiveLedger } = await import('./archiveLedger.ts');
    const { S3Client: Client } = await import('@aws-sdk/client-s3');
    s3 = new Client({ region: config.AWS_REGION, forcePathStyle: true, ...(config.AUDIT_ARCHIVE_S3_ENDPOINT ? { endpoint: config.AUDIT_ARCHIVE_S3_ENDPOINT } : {}) });
    archiver = createSegmentArchiver({
      client: s3,
      location: parseS3Uri(config.AUDIT_ARCHIVE_S3_URI)!,
      service,
      file: config.AUDIT_FILE,
      ledger: await openArchiveLedger(`${config.AUDIT_FILE}.archived`),
      keepLocal: config.AUDIT_ARCHIVE_KEEP_LOCAL ?? true,
      logger,
    });
  }
  const ageMs = (config.AUDIT_ROTATE_SECONDS ?? 0) * 1000;
  return {
    rotation: {
      rotation: { maxBytes: config.AUDIT_ROTATE_BYTES ?? 0, maxAgeMs: ageMs },
      onRotation: (event) => {
        if ('error' in event) {
          logger.error({ code: event.error.code }, 'audit segment not closed; the open segment goes on');
          return;
        }
        const { first, last } = event.closed;
        logger.info({ first, last }, 'audit segment closed');
        checkpointer?.checkpoint('rotation').catch((err: unknown) => logger.error({ code: (err as { code?: string }).code }, 'audit checkpoint at rotation failed'));
        archiver?.enqueue(event.closed);
      },
    },
    async start(audit, checkpoints) {
      checkpointer = checkpoints;
      if (ageMs > 0) {
        timer = setInterval(() => void audit.rotateIfDue(), Math.min(AGE_CHECK_MS, ageMs));
        timer.unref();
      }
      await archiver?.start();
    },
    async close() {
      clearInterval(timer);
      await archiver?.close();
      s3?.destroy();
    },
  };
}
