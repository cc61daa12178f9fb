// Regression: drainQueue held every copy it read (a long visibility timeout). On a FIFO side
// queue a held copy locks its message group, so copies that arrived after the first read of
// the same group were never returned and the drain timed out (emr "never recovers" and
// clockSkew with TEST_QUEUE_FIFO=true).
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureQueues, type EnsuredQueue } from '../../services/core/transport/queues.ts';
import { startTestSqs, type TestSqs } from '../helpers/sqs.ts';
import { waitFor } from '../helpers/wait.ts';
import { depth, drainQueue } from './harness.ts';

let sqs: TestSqs;
let queue: EnsuredQueue;

beforeAll(async () => {
  sqs = await startTestSqs({ fifo: true });
  queue = (await ensureQueues(sqs.client, { prefix: sqs.prefix, fifo: true, queues: ['app-to-interface'], receiveWaitSeconds: 0 }))['app-to-interface'];
});

afterAll(async () => {
  await sqs?.stop();
});

async function sendToDlq(n: number): Promise<void> {
  await sqs.client.send(new SendMessageCommand({ QueueUrl: queue.dlqUrl, MessageBody: `copy-${n}`, MessageGroupId: 'app-to-interface', MessageDeduplicationId: `copy-${n}` }));
}

it('drainQueue reads copies of one FIFO message group that arrive after it read the first', async () => {
  await sendToDlq(1);
  const drained = drainQueue(sqs, queue.dlqUrl, 3, 15_000);
  // The first copy has been read before the others are dead-lettered.
  await waitFor(async () => (await depth(sqs, queue.dlqUrl)).visible === 0, { timeoutMs: 10_000, what: 'first copy read' });
  await sendToDlq(2);
  await sendToDlq(3);
  const got = await drained;
  expect(got.map((m) => m.Body).sort()).toEqual(['copy-1', 'copy-2', 'copy-3']);
  expect((await depth(sqs, queue.dlqUrl)).total).toBe(0);
});
