import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../../services/core/metrics/registry.ts';
import { createConsumer } from '../../../services/core/transport/consumer.ts';
import { ensureQueues } from '../../../services/core/transport/queues.ts';
import { createSqsClient } from '../../../services/core/transport/sqsClient.ts';
import { startTestSqs } from '../../helpers/sqs.ts';
import { captureLogger, counterValue, put, waitFor } from './helpers.ts';

// Needs to stop and restart the endpoint, so it runs against the in-process emulator only.
describe.runIf(!process.env.SQS_ENDPOINT)('endpoint outage', () => {
  it('logs receive failures by code, backs off, and recovers by itself when the endpoint returns', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cr-transport-'));
    const first = await startTestSqs({ dataDir });
    const port = Number(new URL(first.endpoint).port);
    const { 'interface-to-app': q } = await ensureQueues(first.client, { prefix: first.prefix, queues: ['interface-to-app'] });
    const client = createSqsClient({ endpoint: first.endpoint, region: first.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
    const metrics = createMetrics('app', { defaultMetrics: false });
    const log = captureLogger();
    const bodies: string[] = [];
    const consumer = createConsumer({
      client,
      queue: q,
      waitTimeSeconds: 1,
      receiveErrorBaseMs: 100,
      receiveErrorMaxMs: 400,
      metrics,
      logger: log.logger,
      handler: async (m) => {
        bodies.push(m.body);
        return { status: 'done' };
      },
    });
    consumer.start();
    let second: Awaited<ReturnType<typeof startTestSqs>> | undefined;
    try {
      await waitFor(() => consumer.health().lastReceiveAt !== undefined, 5000, 'a first successful receive');
      await first.stop();
      await waitFor(() => consumer.health().consecutiveReceiveErrors >= 2, 10_000, 'receive failures');
      expect(consumer.ready()).toBe(false);
      expect(consumer.isRunning).toBe(true);
      const failure = log.lines().find((l) => l.msg === 'receive failed; backing off');
      expect(failure).toMatchObject({ queue: 'interface-to-app' });
      expect(typeof failure!.code).toBe('string');
      expect(failure!.code).not.toBe('unknown');

      second = await startTestSqs({ dataDir, port });
      await put(second.client, q.url, 'after the outage');
      await waitFor(() => bodies.length === 1, 10_000, 'message after recovery');
      expect(bodies).toEqual(['after the outage']);
      expect(consumer.ready()).toBe(true);
      expect(await counterValue(metrics.transport.receiveErrors, { queue: 'interface-to-app' })).toBeGreaterThanOrEqual(2);
      expect(log.lines().some((l) => l.msg === 'receive recovered')).toBe(true);
    } finally {
      await consumer.stop({ deadlineMs: 500 });
      client.destroy();
      await second?.stop();
    }
  });
});
