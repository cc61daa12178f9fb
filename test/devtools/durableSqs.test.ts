// The dev stack's emulator keeps queued and in-flight messages across a restart. fauxqs
// 2.4.1 alone loses a message released with VisibilityTimeout 0 (see durableSqs.ts); these
// tests show that defect in a plain fauxqs and that the project's correction holds.
import { ChangeMessageVisibilityCommand, CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startDurableSqs, type DurableSqs } from '../../services/devtools/durableSqs.ts';

const run = promisify(execFile);
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-durable-sqs-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs releaseProbe.ts in its own process (the correction patches the process's fauxqs). */
async function probe(mode: 'plain' | 'corrected'): Promise<{ releaseError: string | null; receivedAgain: number; receiveCount: string | null }> {
  const { stdout } = await run(process.execPath, [join(import.meta.dirname, 'releaseProbe.ts'), join(dir, mode), mode], { timeout: 20_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as { releaseError: string | null; receivedAgain: number; receiveCount: string | null };
}

const clientFor = (sqs: DurableSqs): SQSClient => new SQSClient({ endpoint: sqs.address, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });

describe('the persisted dev emulator', () => {
  it('plain fauxqs with a data dir loses a released in-flight message (the upstream defect the correction exists for)', async () => {
    expect(await probe('plain')).toEqual({ releaseError: 'MessageNotInflight', receivedAgain: 0, receiveCount: null });
  });

  it('with the correction, a released message is received again and keeps its receive count', async () => {
    expect(await probe('corrected')).toEqual({ releaseError: null, receivedAgain: 1, receiveCount: '2' });
  });

  it('keeps queued, released and in-flight messages across a restart; an in-flight receipt handle still deletes', async () => {
    const dataDir = join(dir, 'sqs');
    let sqs = await startDurableSqs({ port: 0, dataDir });
    let client = clientFor(sqs);
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: 'restart', Attributes: { VisibilityTimeout: '2' } }));
    for (const body of ['queued', 'released', 'inflight']) await client.send(new SendMessageCommand({ QueueUrl, MessageBody: body }));
    const got = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60 }));
    const byBody = new Map(got.Messages!.map((m) => [m.Body!, m.ReceiptHandle!]));
    expect([...byBody.keys()].sort()).toEqual(['inflight', 'queued', 'released']);
    // 'queued' goes back by visibility change too (a heartbeat then a release), 'released' by release only.
    await client.send(new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle: byBody.get('queued'), VisibilityTimeout: 120 }));
    await client.send(new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle: byBody.get('queued'), VisibilityTimeout: 0 }));
    await client.send(new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle: byBody.get('released'), VisibilityTimeout: 0 }));
    client.destroy();
    await sqs.stop();

    sqs = await startDurableSqs({ port: 0, dataDir });
    client = clientFor(sqs);
    try {
      const back = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      expect(back.Messages!.map((m) => m.Body).sort()).toEqual(['queued', 'released']);
      // Still in flight after the restart: its old receipt handle deletes it.
      await client.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: byBody.get('inflight') }));
      const none = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 0 }));
      expect(none.Messages ?? []).toEqual([]);
    } finally {
      client.destroy();
      await sqs.stop();
    }
  });
});
