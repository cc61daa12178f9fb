import { CreateQueueCommand, DeleteQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startTestSqs } from './sqs.ts';

describe('test SQS endpoint', () => {
  it('round-trips a message', async () => {
    const sqs = await startTestSqs();
    try {
      const { QueueUrl } = await sqs.client.send(new CreateQueueCommand({ QueueName: `${sqs.prefix}smoke` }));
      await sqs.client.send(new SendMessageCommand({ QueueUrl, MessageBody: 'hello' }));
      const got = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
      expect(got.Messages?.[0]?.Body).toBe('hello');
      await sqs.client.send(new DeleteQueueCommand({ QueueUrl }));
    } finally {
      await sqs.stop();
    }
  });

  it.runIf(!process.env.SQS_ENDPOINT)('keeps queued messages across an emulator restart with a data dir', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cr-fauxqs-'));
    const first = await startTestSqs({ dataDir });
    const { QueueUrl } = await first.client.send(new CreateQueueCommand({ QueueName: `${first.prefix}persist` }));
    await first.client.send(new SendMessageCommand({ QueueUrl, MessageBody: 'kept' }));
    await first.stop();
    const second = await startTestSqs({ dataDir, port: new URL(first.endpoint).port ? Number(new URL(first.endpoint).port) : 0 });
    try {
      const got = await second.client.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
      expect(got.Messages?.[0]?.Body).toBe('kept');
    } finally {
      await second.stop();
    }
  });
});
