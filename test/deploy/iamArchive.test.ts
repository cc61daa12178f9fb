// The S3 statements of deploy/iam grant exactly what the audit archive calls: the segment
// archiver and the checkpoint copies talk to the emulator's S3 through a recording proxy; every
// request must be an action the service's policy grants, on a key under its granted prefixes,
// and every S3 action granted must have been called.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArchiveLedger } from '../../services/core/audit/archiveLedger.ts';
import { createSegmentArchiver } from '../../services/core/audit/archiver.ts';
import { openAuditLog } from '../../services/core/audit/auditLog.ts';
import { parseS3Uri, s3CheckpointSink } from '../../services/core/audit/checkpointShip.ts';
import { createCheckpointer } from '../../services/core/audit/checkpointer.ts';
import { checkpointStore } from '../../services/core/audit/checkpointStore.ts';
import { startSqsEmulator, type SqsEmulator } from '../../services/devtools/sqsEmulator.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../helpers/keys.ts';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';

const BUCKET = 'audit-bucket';
let dir: string;
let emulator: SqsEmulator;
let proxy: TestProxy;
let keys: TestServiceKeyPair;
/** `s3:Action` → object keys, as recorded. */
const calls = new Map<string, Set<string>>();

/** The S3 action IAM authorises for a REST request (the archive only ever sends object PUTs). */
function actionOf(method: string, path: string): string {
  const [, , ...key] = path.split('?')[0]!.split('/');
  if (method === 'PUT' && key.length > 0) return 's3:PutObject';
  return `s3:${method}:${path}`;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-iam-archive-'));
  keys = await makeServiceKeyPair();
  emulator = await startSqsEmulator();
  const admin = new S3Client({ endpoint: emulator.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: emulator.credentials });
  await admin.send(new CreateBucketCommand({ Bucket: BUCKET }));
  admin.destroy();
  proxy = await startProxy(emulator.endpoint, (req) => {
    const action = actionOf(req.method, req.path);
    const key = decodeURIComponent(req.path.split('?')[0]!.split('/').slice(2).join('/'));
    calls.set(action, (calls.get(action) ?? new Set()).add(key));
    return undefined;
  });
}, 60_000);
afterAll(async () => {
  await proxy?.close();
  await emulator?.stop();
  await keys?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe('deploy/iam S3 statements against the archive\'s calls', () => {
  it('records a rotation, its checkpoint copy and the segment upload of the app', async () => {
    const endpoint = proxy.url;
    const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: emulator.credentials });
    const file = join(dir, 'app-audit.jsonl');
    const archiver = createSegmentArchiver({ client: s3, location: parseS3Uri(`s3://${BUCKET}/segments`)!, service: 'app', file, ledger: await openArchiveLedger(`${file}.archived`), keepLocal: true });
    const log = await openAuditLog({ file, service: 'app', rotation: { maxBytes: 1 }, onRotation: (e) => void ('closed' in e && archiver.enqueue(e.closed)) });
    const checkpoints = createCheckpointer({ service: 'app', audit: log, key: keys.app.own.current, store: checkpointStore(`${file}.checkpoints`), intervalMs: 60_000, ship: s3CheckpointSink(s3, parseS3Uri(`s3://${BUCKET}/checkpoints`)!) });
    await log.record({ action: 'inbox.read', actor: 'reader-1', resourceType: 'inbox-record', outcome: 'success' });
    await checkpoints.checkpoint('rotation');
    await archiver.idle();
    await archiver.close();
    await log.close();
    s3.destroy();
    expect([...(calls.get('s3:PutObject') ?? [])].length).toBe(2);
  });

  it('every S3 call is granted on that key, and every S3 action granted is called', async () => {
    const policy = JSON.parse(await readFile('deploy/iam/app-policy.json', 'utf8')) as { Statement: Array<{ Action: string[]; Resource: string[] }> };
    // The audit bucket's statements; those of the large-object bucket are checked in iam.test.ts.
    const s3 = policy.Statement.filter((st) => st.Action.every((a) => a.startsWith('s3:')) && st.Resource.every((r) => r.startsWith('arn:aws:s3:::AUDIT_BUCKET/')));
    const granted = new Map<string, RegExp[]>();
    for (const st of s3) {
      for (const a of st.Action) granted.set(a, [...(granted.get(a) ?? []), ...st.Resource.map((r) => new RegExp(`^${r.replace('arn:aws:s3:::AUDIT_BUCKET/', '').replace('*', '[^]+')}$`))]);
    }
    for (const [action, keysCalled] of calls) {
      for (const key of keysCalled) expect((granted.get(action) ?? []).some((g) => g.test(key)), `${action} on ${key}`).toBe(true);
    }
    expect([...granted.keys()].sort()).toEqual([...calls.keys()].sort());
  });
});
