import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRelayError } from '../../../services/core/errors/relayError.ts';
import { createConsumer } from '../../../services/core/transport/consumer.ts';
import { LOGICAL_QUEUES, ensureQueues, physicalQueueName, queueDefinitions, redrivePolicy, resolveQueues } from '../../../services/core/transport/queues.ts';
import { startTestSqs, type TestSqs } from '../../helpers/sqs.ts';
import { deleteQueues, put, takeAtLeast, waitFor } from './helpers.ts';

let sqs: TestSqs;
beforeAll(async () => {
  sqs = await startTestSqs();
});
afterAll(async () => {
  await deleteQueues(sqs.client, sqs.prefix).catch(() => undefined);
  await sqs.stop();
});

describe('queue definitions', () => {
  it('renders main, DLQ and quarantine queues for every logical queue with the documented attributes', () => {
    const defs = queueDefinitions({ prefix: 'p-' }, (name) => `arn:aws:sqs:us-east-1:000000000000:${name}`);
    expect(defs.map((d) => d.name)).toEqual(
      LOGICAL_QUEUES.flatMap((q) => [`p-${q}-dlq`, `p-${q}-quarantine`, `p-${q}`]),
    );
    const main = defs.find((d) => d.name === 'p-interface-to-app')!;
    expect(main.attributes).toMatchObject({ MessageRetentionPeriod: '345600', MaximumMessageSize: '1048576', ReceiveMessageWaitTimeSeconds: '20' });
    expect(JSON.parse(main.attributes.RedrivePolicy!)).toEqual({ deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:p-interface-to-app-dlq', maxReceiveCount: 5 });
    expect(defs.find((d) => d.role === 'dlq')!.attributes.MessageRetentionPeriod).toBe('1209600');
    expect(defs.find((d) => d.role === 'quarantine')!.attributes.MessageRetentionPeriod).toBe('1209600');
  });

  it('names FIFO queues with .fifo and turns content-based deduplication off', () => {
    expect(physicalQueueName('x-', 'app-to-interface', 'dlq', true)).toBe('x-app-to-interface-dlq.fifo');
    const def = queueDefinitions({ prefix: '', fifo: true, queues: ['app-sms-redaction'] })[2]!;
    expect(def).toMatchObject({ name: 'app-sms-redaction.fifo', attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'false' } });
  });

  it('refuses a maxReceiveCount outside 1-1000', () => {
    expect(() => queueDefinitions({ prefix: '', maxReceiveCount: 0 })).toThrow(/maxReceiveCount/);
  });
});

describe('ensureQueues and resolveQueues', () => {
  it('creates all queues idempotently with a redrive policy to the DLQ', async () => {
    const first = await ensureQueues(sqs.client, { prefix: sqs.prefix });
    const second = await ensureQueues(sqs.client, { prefix: sqs.prefix });
    expect(second).toEqual(first);
    expect(Object.keys(first).sort()).toEqual([...LOGICAL_QUEUES].sort());
    const q = first['interface-to-app'];
    const attrs = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: q.url, AttributeNames: ['RedrivePolicy', 'MessageRetentionPeriod'] }));
    expect(JSON.parse(attrs.Attributes!.RedrivePolicy!)).toEqual(JSON.parse(redrivePolicy(q.dlqArn, 5)));
    const resolved = await resolveQueues(sqs.client, { prefix: sqs.prefix, queues: ['interface-to-app'] });
    expect(resolved['interface-to-app']).toEqual({ logical: 'interface-to-app', name: q.name, url: q.url, fifo: false, dlqUrl: q.dlqUrl, quarantineUrl: q.quarantineUrl });
  });

  it('fails with a clear error when an existing queue has different attributes', async () => {
    const prefix = `${sqs.prefix}conf-`;
    await ensureQueues(sqs.client, { prefix, queues: ['app-sms-redaction'], maxReceiveCount: 3 });
    const err = await ensureQueues(sqs.client, { prefix, queues: ['app-sms-redaction'], maxReceiveCount: 4 }).catch((e: unknown) => e);
    expect(isRelayError(err, 'CR_TRANSPORT_QUEUE_SETUP_FAILED')).toBe(true);
    expect((err as Error).message).toContain(`${prefix}app-sms-redaction`);
  });

  it('names the missing queue when resolving', async () => {
    const err = await resolveQueues(sqs.client, { prefix: `${sqs.prefix}nothing-`, queues: ['app-to-interface'] }).catch((e: unknown) => e);
    expect(isRelayError(err, 'CR_TRANSPORT_QUEUE_MISSING')).toBe(true);
    expect((err as Error).message).toMatch(new RegExp(`queue "${sqs.prefix}nothing-app-to-interface(-dlq|-quarantine)?" does not exist`));
  });

  it('moves a message retried past maxReceiveCount to the DLQ by redrive', async () => {
    const prefix = `${sqs.prefix}redrive-`;
    const { 'interface-to-app': q } = await ensureQueues(sqs.client, { prefix, queues: ['interface-to-app'], maxReceiveCount: 2 });
    let calls = 0;
    const consumer = createConsumer({
      client: sqs.client,
      queue: q,
      waitTimeSeconds: 1,
      handler: async () => {
        calls++;
        return { status: 'retry', reason: 'CR_TEST_TRANSIENT', afterSeconds: 0 };
      },
    });
    await put(sqs.client, q.url, 'keeps failing');
    consumer.start();
    try {
      const [dead] = await takeAtLeast(sqs.client, q.dlqUrl, 1, 15_000);
      expect(dead!.Body).toBe('keeps failing');
      expect(dead!.MessageAttributes?.['cr-version']?.StringValue).toBe('1');
      await waitFor(() => calls === 2, 2000, 'two handler calls');
    } finally {
      await consumer.stop({ deadlineMs: 1000 });
    }
    expect(calls).toBe(2);
  });
});
