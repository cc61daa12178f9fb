import { randomBytes } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENESIS_HASH, entryHash } from '../../services/core/audit/chain.ts';
import { CHECKPOINT_KIND, signCheckpoint } from '../../services/core/audit/checkpoint.ts';
import { readCheckpointFile } from '../../services/core/audit/checkpointStore.ts';
import { buildEnvelope } from '../../services/core/envelope/envelope.ts';
import { seal } from '../../services/core/envelope/seal.ts';
import { loadAppConfig } from '../../services/app/config.ts';
import { startAppService } from '../../services/app/service.ts';
import { captureLogger } from '../helpers/logs.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { fifoSendIds, startTestSqs, type TestSqs } from '../helpers/sqs.ts';
import { readTrail } from '../helpers/trail.ts';
import { waitFor } from '../helpers/wait.ts';

const main = resolve(import.meta.dirname, '../../services/cli/main.ts');
const bucket = `cr-audit-${randomBytes(4).toString('hex')}`;
let sqs: TestSqs;
let s3: S3Client;
let stack: TestStack;

beforeAll(async () => {
  sqs = await startTestSqs();
  s3 = new S3Client({ endpoint: sqs.endpoint, region: sqs.region, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const every = { AUDIT_CHECKPOINT_INTERVAL_SECONDS: '1' };
  stack = await startStack({
    sqs,
    ifaceEnv: every,
    appEnv: { ...every, AUDIT_CHECKPOINT_S3_URI: `s3://${bucket}/checkpoints`, AUDIT_CHECKPOINT_S3_ENDPOINT: sqs.endpoint },
  });
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  s3?.destroy();
  await sqs?.stop();
});

describe('audit checkpoints witnessed over the relay', () => {
  it('each service records the signed checkpoints of the other (audit.witnessed, its checkpoint file), never in the inbox or at the EMR', async () => {
    const files = { iface: stack.env.iface.AUDIT_FILE!, app: stack.env.app.AUDIT_FILE! };
    const witnessedBy = async (file: string, peer: string) => (await readTrail(file)).filter((l) => l.action === 'audit.witnessed' && l.details?.service === peer);
    const byIface = await waitFor(async () => ((await witnessedBy(files.iface, 'app')).length >= 2 ? witnessedBy(files.iface, 'app') : undefined), { what: 'interface witnesses app checkpoints', timeoutMs: 30_000 });
    await waitFor(async () => (await witnessedBy(files.app, 'interface')).length >= 2, { what: 'app witnesses interface checkpoints', timeoutMs: 30_000 });

    // What the interface witnessed is exactly what the app signed in its own checkpoint file.
    const appCheckpoints = await readCheckpointFile(`${files.app}.checkpoints`);
    if (!appCheckpoints.ok) throw new Error('app checkpoint file unreadable');
    const own = appCheckpoints.checkpoints.filter((c) => c.checkpoint.service === 'app');
    const w = byIface[0]!.details!;
    expect(own.some((c) => c.checkpoint.seq === w.seq && c.checkpoint.headHash === w.headHash && c.checkpoint.at === w.at)).toBe(true);
    // ...and the app's trail has that hash at that seq.
    const appTrail = await readTrail(files.app);
    expect(appTrail.find((l) => l.seq === w.seq)?.hash).toBe(w.headHash);
    // The interface keeps the app's signed checkpoint in its own checkpoint file too.
    const ifaceCheckpoints = await readCheckpointFile(`${files.iface}.checkpoints`);
    expect(ifaceCheckpoints.ok && ifaceCheckpoints.checkpoints.some((c) => c.checkpoint.service === 'app' && c.checkpoint.seq === w.seq)).toBe(true);

    // Witnessing is not a record for the application nor a delivery to the EMR.
    expect(stack.app.inbox.size).toBe(0);
    expect(stack.sink.deliveries.size).toBe(0);
  });

  it('a redelivered checkpoint envelope is witnessed once (SQS handing it over again appended it to the witness file twice)', async () => {
    const files = { iface: stack.env.iface.AUDIT_FILE!, app: stack.env.app.AUDIT_FILE! };
    const appCheckpoints = await readCheckpointFile(`${files.app}.checkpoints`);
    if (!appCheckpoints.ok) throw new Error('app checkpoint file unreadable');
    const last = appCheckpoints.checkpoints.findLast((c) => c.checkpoint.service === 'app')!;
    // A checkpoint of the app's trail signed with the app's key now: no periodic envelope carries this signature.
    const signed = await signCheckpoint({ ...last.checkpoint, at: new Date().toISOString() }, stack.keys.app.own.current);
    // One envelope, on the queue twice: what SQS does after a lost delete.
    const envelope = buildEnvelope({ kind: CHECKPOINT_KIND, from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/json', body: JSON.stringify(signed) });
    const sealed = await seal(envelope, stack.keys.app.own, stack.keys.app.peers);
    for (let copy = 0; copy < 2; copy++) {
      await sqs.client.send(
        new SendMessageCommand({ QueueUrl: stack.queues['app-to-interface'].url, MessageBody: sealed.body, MessageAttributes: sealed.attributes, ...fifoSendIds(sqs, 'app-to-interface') }),
      );
    }
    // The second copy is acknowledged as a duplicate (audited), not witnessed again.
    await waitFor(async () => (await readTrail(files.iface)).some((l) => l.action === 'message.duplicate' && l.resourceId === envelope.id), {
      what: 'the second copy acknowledged as a duplicate',
      timeoutMs: 60_000,
    });
    const witnessed = (await readTrail(files.iface)).filter((l) => l.action === 'audit.witnessed' && l.details?.envelopeId === envelope.id);
    expect(witnessed).toHaveLength(1);
    const ifaceCheckpoints = await readCheckpointFile(`${files.iface}.checkpoints`);
    if (!ifaceCheckpoints.ok) throw new Error('interface checkpoint file unreadable');
    expect(ifaceCheckpoints.checkpoints.filter((c) => c.signature === signed.signature)).toHaveLength(1);
  });

  it('the app ships every checkpoint to S3, one object each', async () => {
    const listed = await waitFor(async () => {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'checkpoints/app/' }));
      return (r.Contents?.length ?? 0) >= 2 ? r.Contents : undefined;
    }, { what: 'checkpoints in S3', timeoutMs: 30_000 });
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: listed[0]!.Key! }));
    const shipped = JSON.parse(await object.Body!.transformToString()) as { checkpoint: { service: string; seq: number; at: string } };
    expect(shipped.checkpoint.service).toBe('app');
    expect(listed[0]!.Key).toBe(`checkpoints/app/${String(shipped.checkpoint.seq).padStart(12, '0')}-${shipped.checkpoint.at.replace(/[:.]/g, '')}.json`);
  });

  it('`audit verify --witness` passes on the live trails; a rewritten app trail is refused at start, and the audited override starts a new one', async () => {
    const files = { iface: stack.env.iface.AUDIT_FILE!, app: stack.env.app.AUDIT_FILE! };
    await stack.app.stop();
    const verify = () => spawnSync(process.execPath, [main, 'audit', 'verify', files.app, '--key', stack.keys.app.dir, '--witness', files.iface], { encoding: 'utf8' });
    const ok = verify();
    expect(ok.stdout).toMatch(/^ok: \d+ entries, head seq \d+ hash [0-9a-f]{64}; \d+ signed checkpoints \(last at seq \d+\), [1-9]\d* witnessed\n$/);
    expect(ok.status).toBe(0);

    // Someone with write access rewrites the whole trail with recomputed hashes.
    let prev = GENESIS_HASH;
    const rewritten = (await readTrail(files.app)).map((e) => {
      const copy = { ...e, actor: e.actor === 'reader' ? 'someone-else' : e.actor, ts: e.seq === 1 ? '2020-01-01T00:00:00.000Z' : e.ts, prev };
      copy.hash = entryHash(copy);
      prev = copy.hash;
      return JSON.stringify(copy);
    });
    await writeFile(files.app, rewritten.join('\n') + '\n');
    const bad = verify();
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/^line 1: hash differs from the checkpoint (signed|witnessed by interface) at \S+ \(trail rewritten\)\n$/);

    const logger = captureLogger('app').logger;
    const refused = startAppService(loadAppConfig(stack.env.app), { listen: false, logger });
    await expect(refused).rejects.toMatchObject({ code: 'CR_AUDIT_TRAIL_UNVERIFIED' });
    const digest = /AUDIT_ACCEPT_BROKEN_TRAIL=([0-9a-f]{64})/.exec(String((await refused.catch((e: unknown) => e)) as Error))![1]!;

    const app = await startAppService(loadAppConfig({ ...stack.env.app, AUDIT_ACCEPT_BROKEN_TRAIL: digest }), { listen: false, logger });
    stack.app = app;
    const fresh = await readTrail(files.app);
    expect(fresh[0]).toMatchObject({ seq: 1, action: 'audit.override', actor: 'operator', resourceId: digest, details: { reason: expect.stringMatching(/trail rewritten/) } });
    expect(await stat(`${files.app}.broken-${digest.slice(0, 16)}`)).toBeTruthy();
    expect(fresh[1]).toMatchObject({ action: 'key.loaded' });
  }, 120_000);
});
