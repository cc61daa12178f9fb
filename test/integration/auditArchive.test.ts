// A real app service rotates its trail and ships the closed segments to the emulator's S3;
// after a restart the chain goes on, and the restore steps of docs/deploy.md (download the
// segments and the checkpoint copies, verify them with the open segment) pass.
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAppConfig } from '../../services/app/config.ts';
import { startAppService } from '../../services/app/service.ts';
import { listClosedSegments } from '../../services/core/audit/segments.ts';
import { captureLogger } from '../helpers/logs.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { startTestSqs, type TestSqs } from '../helpers/sqs.ts';
import { waitFor } from '../helpers/wait.ts';

const main = resolve(import.meta.dirname, '../../services/cli/main.ts');
const bucket = `cr-archive-${randomBytes(4).toString('hex')}`;
let sqs: TestSqs;
let s3: S3Client;
let stack: TestStack;
let restore: string;

async function keys(prefix: string): Promise<string[]> {
  const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}

async function body(key: string): Promise<string> {
  return (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
}

beforeAll(async () => {
  restore = await mkdtemp(join(tmpdir(), 'cr-restore-'));
  sqs = await startTestSqs();
  s3 = new S3Client({ endpoint: sqs.endpoint, region: sqs.region, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  // Checkpoints every second are witnessed by the app: its trail grows without traffic, and rotates every ~2 kB.
  stack = await startStack({
    sqs,
    ifaceEnv: { AUDIT_CHECKPOINT_INTERVAL_SECONDS: '1' },
    appEnv: {
      AUDIT_ROTATE_BYTES: '2000',
      AUDIT_ARCHIVE_S3_URI: `s3://${bucket}/segments`,
      AUDIT_ARCHIVE_S3_ENDPOINT: sqs.endpoint,
      AUDIT_CHECKPOINT_S3_URI: `s3://${bucket}/checkpoints`,
      AUDIT_CHECKPOINT_S3_ENDPOINT: sqs.endpoint,
    },
  });
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  s3?.destroy();
  await sqs?.stop();
  await rm(restore, { recursive: true, force: true });
});

describe('audit segments archived to S3 by a running service', () => {
  it('ships each closed segment under segments/app/, named by seq range only', async () => {
    const shipped = await waitFor(async () => ((await keys('segments/app/')).length >= 2 ? keys('segments/app/') : undefined), { what: 'two segments in S3', timeoutMs: 60_000 });
    for (const key of shipped) expect(key).toMatch(/^segments\/app\/\d{12}-\d{12}-[0-9a-f]{12}\.jsonl$/);
    const local = await listClosedSegments(stack.env.app.AUDIT_FILE!);
    expect(local.length).toBeGreaterThanOrEqual(shipped.length);
  });

  it('after a restart the chain continues; the segments downloaded from S3 with the checkpoint copies and the open segment verify', async () => {
    const file = stack.env.app.AUDIT_FILE!;
    await stack.app.stop();
    const logger = captureLogger('app').logger;
    stack.app = await startAppService(loadAppConfig(stack.env.app), { listen: false, logger });
    const before = (await keys('segments/app/')).length;
    await waitFor(async () => (await keys('segments/app/')).length > before, { what: 'a segment closed after the restart, in S3', timeoutMs: 60_000 });
    // The interface stops sending checkpoints, so the app's trail stops growing; a segment closed
    // just before the app stopped is shipped by the next start.
    await stack.iface.stop();
    await stack.app.stop();
    // The stop's own lines (its last checkpoint) may close one more segment, which only the next
    // start ships: start and stop again until a stop closed none (each round is a real restart).
    const inS3 = async () => (await keys('segments/app/')).length === (await listClosedSegments(file)).length;
    for (let round = 1; ; round++) {
      stack.app = await startAppService(loadAppConfig(stack.env.app), { listen: false, logger });
      await waitFor(inS3, { what: 'every closed segment in S3', timeoutMs: 30_000 });
      await stack.app.stop();
      if (await inS3()) break;
      expect(round, 'a stop that closes no segment').toBeLessThan(5);
    }
    // Download, as an operator would.
    const folder = join(restore, 'segments');
    await mkdir(folder);
    const segmentKeys = await keys('segments/app/');
    for (const key of segmentKeys) await writeFile(join(folder, key.split('/').at(-1)!), await body(key));
    const checkpoints = (await Promise.all((await keys('checkpoints/app/')).map(body))).join('');
    await writeFile(join(restore, 's3.checkpoints'), checkpoints);

    const r = spawnSync(process.execPath, [main, 'audit', 'verify', folder, file, '--key', stack.keys.app.dir, '--checkpoints', join(restore, 's3.checkpoints')], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/^ok: \d+ entries in \d+ closed segments and the open one, head seq \d+ hash [0-9a-f]{64}; \d+ signed checkpoints/);
    expect(r.status).toBe(0);
    // The local run (closed segments next to the trail) verifies too, against the local checkpoint file.
    const local = spawnSync(process.execPath, [main, 'audit', 'verify', file, '--key', stack.keys.app.dir], { encoding: 'utf8' });
    expect(local.status, local.stdout).toBe(0);
  }, 180_000);
});
