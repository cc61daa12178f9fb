import { CreateQueueCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedactionHandler } from '../../../services/app/sms/redactionWorker.ts';
import { createSmsSender } from '../../../services/app/sms/send.ts';
import type { EnqueueRedaction } from '../../../services/app/sms/types.ts';
import { createConsumer, type Consumer } from '../../../services/core/transport/consumer.ts';
import { startTestSqs, type TestSqs } from '../../helpers/sqs.ts';
import { testQueue } from '../../core/transport/helpers.ts';
import { captureLogger, fastRetry, memoryAudit, startWebhook, startWorld, waitFor, keylessClaims, type SmsWorld } from './helpers.ts';
import { memoryApplyLedger } from '../../helpers/ledgers.ts';

let sqs: TestSqs;
let world: SmsWorld;
let app: FastifyInstance;
let queueUrl: string;
const audit = memoryAudit();
const log = captureLogger();
let consumer: Consumer;
let enqueue: EnqueueRedaction;
const settled = memoryApplyLedger();

beforeAll(async () => {
  sqs = await startTestSqs();
  const create = async (name: string) => (await sqs.client.send(new CreateQueueCommand({ QueueName: `${sqs.prefix}${name}` }))).QueueUrl!;
  queueUrl = await create('app-sms-redaction');
  const dlqUrl = await create('app-sms-redaction-dlq');
  const quarantineUrl = await create('app-sms-redaction-quarantine');
  world = await startWorld({ stepMs: 30 }, { fallbackDelaySeconds: 2, sentGraceSeconds: 1 });
  enqueue = async (job, delaySeconds) => {
    await sqs.client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(job), DelaySeconds: delaySeconds }));
  };
  app = await startWebhook(world, { enqueue, logger: log.logger, audit });
  const handler = createRedactionHandler({ config: world.config, api: world.api, audit, audited: memoryApplyLedger(), enqueue, settled, claims: keylessClaims, logger: log.logger, retry: fastRetry });
  // The real transport consumer runs the handler (done deletes, retry re-delays by visibility).
  consumer = createConsumer({ client: sqs.client, queue: testQueue(queueUrl, { logical: 'app-sms-redaction', dlqUrl, quarantineUrl }), handler, service: 'app', waitTimeSeconds: 1, visibilityTimeoutSeconds: 30 });
  consumer.start();
});

afterAll(async () => {
  await consumer.stop({ deadlineMs: 5000 });
  await app.close();
  await world.fake.stop();
  await sqs.stop();
});

function sender() {
  return createSmsSender({ config: world.config, api: world.api, claims: keylessClaims, settled, enqueue, audit, logger: log.logger });
}

describe('SMS lifecycle against the fake and SQS', () => {
  it('send → signed callback → webhook → SQS job → worker: media deleted, body blank', async () => {
    const { sid } = await sender()({ to: '+15551230101', body: 'Lab results for Jane Roe', mediaUrls: ['https://m.example/scan.jpg', 'https://m.example/scan2.png'] });
    await waitFor(() => world.fake.message(sid)?.body === '' && world.fake.mediaOf(sid).length === 0, 15_000, 'redaction');
    // The worker audits after its last SignalWire call, and the last callback's answer may still be on its way.
    await waitFor(() => audit.events.some((e) => e.action === 'sms.redacted'), 5_000, 'redaction audited');
    await waitFor(() => world.fake.callbacks.sent.filter((c) => c.params.MessageSid === sid).length === 3, 5_000, 'three callbacks answered');
    const cb = world.fake.callbacks.sent.filter((c) => c.params.MessageSid === sid);
    // Each callback is posted as its status happens; a slow answer can let the next one overtake it.
    expect(cb.map((c) => c.params.MessageStatus).sort()).toEqual(['delivered', 'sending', 'sent']);
    expect(cb.every((c) => c.responseStatus === 204)).toBe(true);
    expect(audit.events.find((e) => e.action === 'sms.redacted' && e.details?.mediaDeleted === 2)).toBeDefined();
  });

  it('a lost callback: the fallback job still redacts', async () => {
    world.fake.callbacks.dropWhere(() => true);
    try {
      const t0 = Date.now();
      const { sid } = await sender()({ to: '+15551230102', body: 'Appointment tomorrow', mediaUrls: ['https://m.example/map.png'] });
      await waitFor(() => world.fake.message(sid)?.body === '' && world.fake.mediaOf(sid).length === 0, 15_000, 'fallback redaction');
      // Nothing reached the webhook: only the fallback job (delayed 2 s) can have done it.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
      expect(world.fake.callbacks.sent.filter((c) => c.params.MessageSid === sid).every((c) => c.dropped)).toBe(true);
    } finally {
      world.fake.callbacks.dropWhere(undefined);
    }
  });

  it('an MMS stuck at `sent` is redacted after the grace period, through re-delays', async () => {
    world.fake.nextOutcome('sent');
    const { sid } = await sender()({ to: '+15551230103', body: '', mediaUrls: ['https://m.example/x.jpg'] });
    await waitFor(() => world.fake.mediaOf(sid).length === 0, 15_000, 'sent-grace redaction');
    expect(world.fake.message(sid)!.status).toBe('sent');
  });
});
