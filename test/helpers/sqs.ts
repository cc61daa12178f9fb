import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createDynamoClient } from '../../services/core/state/table.ts';
import { ensureStateTable, STATE_SERVICES, stateTableName } from '../../services/core/state/tables.ts';
import { startEmbeddedDynamo } from '../../services/devtools/embeddedDynamo.ts';

/**
 * The backend of a test: an SQS endpoint (the in-process emulator, or whatever SQS_ENDPOINT
 * names) and a DynamoDB endpoint with both services' state tables for the prefix (in-process
 * dynalite, or whatever DYNAMODB_ENDPOINT names).
 */
export interface TestSqs {
  /** Endpoint URL the services should be given. */
  endpoint: string;
  /** DynamoDB endpoint of the state tables (DYNAMODB_ENDPOINT). */
  dynamodbEndpoint: string;
  /** Region to use with it. */
  region: string;
  /** A client pointed at it. */
  client: SQSClient;
  /** A queue-name prefix unique to this test run, so suites never share queues. */
  prefix: string;
  /** Stops the emulator (no-op for an external endpoint). */
  stop(): Promise<void>;
}

/** Options for {@link startTestSqs}. */
export interface StartTestSqsOptions {
  /** Emulator only: a folder for SQLite persistence (and the store's files), so a restart keeps queued messages and state. */
  dataDir?: string;
  /** A DynamoDB endpoint started by the caller (kept across emulator restarts; not stopped here). */
  dynamodbEndpoint?: string;
  /** Emulator only: a fixed port (e.g. to restart on the same endpoint). */
  port?: number;
}

/**
 * Starts the fauxqs emulator in-process on loopback, unless `SQS_ENDPOINT` is set
 * (LocalStack, AWS), in which case that endpoint is used with the default credential
 * chain. The same suites therefore run against any of them (see `npm run test:remote`).
 */
export async function startTestSqs(options: StartTestSqsOptions = {}): Promise<TestSqs> {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const prefix = `t${Date.now().toString(36)}${randomBytes(3).toString('hex')}-`;
  const store = await startTestStore(prefix, region, options.dynamodbEndpoint, options.dataDir ? join(options.dataDir, 'dynamo') : undefined);
  const external = process.env.SQS_ENDPOINT;
  if (external) {
    const client = new SQSClient({ endpoint: external, region });
    return { endpoint: external, dynamodbEndpoint: store.endpoint, region, client, prefix, stop: async () => (client.destroy(), await store.stop()) };
  }
  const { startFauxqs } = await import('fauxqs');
  const server = await startFauxqs({ port: options.port ?? 0, host: '127.0.0.1', logger: false, ...(options.dataDir ? { dataDir: options.dataDir } : {}) });
  const endpoint = server.address;
  // The emulator accepts any credentials; static ones keep the SDK from probing the host.
  const client = new SQSClient({ endpoint, region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  return {
    endpoint,
    dynamodbEndpoint: store.endpoint,
    region,
    client,
    prefix,
    stop: async () => {
      client.destroy();
      await server.stop();
      await store.stop();
    },
  };
}

/** Starts dynalite unless an endpoint is given or DYNAMODB_ENDPOINT is set, and creates both state tables for `prefix`. */
async function startTestStore(prefix: string, region: string, given: string | undefined, path: string | undefined): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const external = given ?? process.env.DYNAMODB_ENDPOINT;
  const embedded = external ? undefined : await startEmbeddedDynamo(path ? { path } : {});
  const endpoint = external ?? embedded!.endpoint;
  const client = createDynamoClient({ endpoint, region, ...(external ? {} : { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }) });
  try {
    for (const service of STATE_SERVICES) await ensureStateTable(client, stateTableName(prefix, service));
  } finally {
    client.destroy();
  }
  return { endpoint, stop: async () => embedded?.stop() };
}
