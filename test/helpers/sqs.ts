import { randomBytes } from 'node:crypto';
import { SQSClient } from '@aws-sdk/client-sqs';

/** An SQS endpoint for a test: the in-process emulator, or whatever SQS_ENDPOINT names. */
export interface TestSqs {
  /** Endpoint URL the services should be given. */
  endpoint: string;
  /** Region to use with it. */
  region: string;
  /** A client pointed at it. */
  client: SQSClient;
  /** A queue-name prefix unique to this test run, so suites never share queues. */
  prefix: string;
  /** FIFO queues (`TEST_QUEUE_FIFO=true`, or the `fifo` option): helpers create `.fifo` queues and set QUEUE_FIFO. */
  fifo: boolean;
  /** Stops the emulator (no-op for an external endpoint). */
  stop(): Promise<void>;
}

/** Options for {@link startTestSqs}. */
export interface StartTestSqsOptions {
  /** Emulator only: a folder for SQLite persistence, so a restart keeps queued messages. */
  dataDir?: string;
  /** Emulator only: a fixed port (e.g. to restart on the same endpoint). */
  port?: number;
  /** FIFO queues; default `TEST_QUEUE_FIFO` (true/1/yes), so whole suites can be run once with FIFO. */
  fifo?: boolean;
}

/** True when the suites should run on FIFO queues (`TEST_QUEUE_FIFO=true`). */
export function fifoFromEnv(): boolean {
  return ['true', '1', 'yes'].includes(process.env.TEST_QUEUE_FIFO ?? '');
}

/**
 * Starts the fauxqs emulator in-process on loopback, unless `SQS_ENDPOINT` is set
 * (LocalStack, AWS), in which case that endpoint is used with the default credential
 * chain. The same suites therefore run against any of them (see `npm run test:remote`).
 */
export async function startTestSqs(options: StartTestSqsOptions = {}): Promise<TestSqs> {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const prefix = `t${Date.now().toString(36)}${randomBytes(3).toString('hex')}-`;
  const fifo = options.fifo ?? fifoFromEnv();
  const external = process.env.SQS_ENDPOINT;
  if (external) {
    const client = new SQSClient({ endpoint: external, region });
    return { endpoint: external, region, client, prefix, fifo, stop: async () => client.destroy() };
  }
  const { startFauxqs } = await import('fauxqs');
  const server = await startFauxqs({ port: options.port ?? 0, host: '127.0.0.1', logger: false, ...(options.dataDir ? { dataDir: options.dataDir } : {}) });
  const endpoint = server.address;
  // The emulator accepts any credentials; static ones keep the SDK from probing the host.
  const client = new SQSClient({ endpoint, region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  return {
    endpoint,
    region,
    client,
    prefix,
    fifo,
    stop: async () => {
      client.destroy();
      await server.stop();
    },
  };
}

/**
 * What a raw SendMessage to a test queue needs besides body and attributes: on FIFO queues a
 * message group and a fresh deduplication id (so a deliberate re-send arrives again, as on a
 * standard queue).
 */
export function fifoSendIds(sqs: Pick<TestSqs, 'fifo'>, groupId: string): { MessageGroupId?: string; MessageDeduplicationId?: string } {
  return sqs.fifo ? { MessageGroupId: groupId, MessageDeduplicationId: randomBytes(16).toString('hex') } : {};
}
