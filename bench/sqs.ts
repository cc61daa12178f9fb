// (4) A raw SQS round trip (send + receive + delete) on the in-process emulator, no crypto.
import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { timed, type Throughput } from './lib.ts';

/** Round trips per second for one body size. */
export interface SqsResult {
  /** Payload bytes (the body is an armored message of that payload). */
  size: number;
  /** Body bytes actually sent. */
  bodyBytes: number;
  /** send + receive + delete. */
  roundTrip: Throughput;
}

/** Round trips in flight. */
export const SQS_CONCURRENCY = 16;

/** Measures send → receive → delete with `SQS_CONCURRENCY` loops on one queue. */
export async function benchSqs(client: SQSClient, prefix: string, bodies: ReadonlyArray<{ size: number; body: string }>, budget: { durationMs: number; maxOps: number }): Promise<SqsResult[]> {
  const results: SqsResult[] = [];
  for (const { size, body } of bodies) {
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: `${prefix}raw-${size}` }));
    const roundTrip = await timed({ ...budget, concurrency: SQS_CONCURRENCY }, async () => {
      await client.send(new SendMessageCommand({ QueueUrl, MessageBody: body, MessageAttributes: { 'cr-version': { DataType: 'String', StringValue: '1' } } }));
      for (;;) {
        const got = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
        const m = got.Messages?.[0];
        if (!m) continue;
        await client.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle }));
        return;
      }
    });
    results.push({ size, bodyBytes: body.length, roundTrip });
  }
  return results;
}
