import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll } from 'vitest';
import { createDynamoClient, openStateTable, type StateTable } from '../../services/core/state/table.ts';
import { ensureStateTable, STATE_SERVICES, stateTableName } from '../../services/core/state/tables.ts';
import { startEmbeddedDynamo } from '../../services/devtools/embeddedDynamo.ts';
import { startSqsEmulator } from '../../services/devtools/sqsEmulator.ts';

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
  /** The environment a service needs to reach it (SQS_ENDPOINT, DYNAMODB_ENDPOINT, AWS_REGION, the emulator's static credentials). */
  serviceEnv(): Record<string, string>;
  /** FIFO queues (`TEST_QUEUE_FIFO=true`, or the `fifo` option): helpers create `.fifo` queues and set QUEUE_FIFO. */
  fifo: boolean;
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
  const store = await startTestStore(prefix, region, options.dynamodbEndpoint, options.dataDir ? join(options.dataDir, 'dynamo') : undefined);
  const external = process.env.SQS_ENDPOINT;
  if (external) {
    const client = new SQSClient({ endpoint: external, region });
    const serviceEnv = (): Record<string, string> => ({ SQS_ENDPOINT: external, AWS_REGION: region, DYNAMODB_ENDPOINT: store.endpoint });
    return { endpoint: external, dynamodbEndpoint: store.endpoint, region, client, prefix, fifo, serviceEnv, stop: async () => (client.destroy(), await store.stop()) };
  }
  const server = await startSqsEmulator({ ...(options.port ? { port: options.port } : {}), ...(options.dataDir ? { dataDir: options.dataDir } : {}) });
  const client = new SQSClient({ endpoint: server.endpoint, region: server.region, credentials: server.credentials });
  return {
    endpoint: server.endpoint,
    dynamodbEndpoint: store.endpoint,
    region: server.region,
    client,
    prefix,
    fifo,
    serviceEnv: () => ({ ...server.serviceEnv(), DYNAMODB_ENDPOINT: store.endpoint }),
    stop: async () => {
      client.destroy();
      await server.stop();
      await store.stop();
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

/** Starts dynalite unless an endpoint is given or DYNAMODB_ENDPOINT is set, and creates both state tables for `prefix`. */
async function startTestStore(prefix: string, region: string, given: string | undefined, path: string | undefined): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const external = given ?? process.env.DYNAMODB_ENDPOINT;
  const embedded = external ? undefined : await startEmbeddedDynamo(path ? { path } : {});
  const endpoint = external ?? embedded!.endpoint;
  await ensureStateTables(endpoint, region, prefix, external === undefined);
  return { endpoint, stop: async () => embedded?.stop() };
}

async function ensureStateTables(endpoint: string, region: string, prefix: string, embedded: boolean): Promise<void> {
  const client = createDynamoClient({ endpoint, region, ...(embedded ? { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } } : {}) });
  try {
    for (const service of STATE_SERVICES) await ensureStateTable(client, stateTableName(prefix, service));
  } finally {
    client.destroy();
  }
}

/** Creates both services' state tables for another queue prefix on the store of `sqs` (a test that starts a service on its own queues needs them). */
export async function ensureTestStateTables(sqs: Pick<TestSqs, 'dynamodbEndpoint' | 'region'>, prefix: string): Promise<void> {
  await ensureStateTables(sqs.dynamodbEndpoint, sqs.region, prefix, process.env.DYNAMODB_ENDPOINT === undefined);
}

/** Opens a service's state table on the store of `sqs` (the tables startTestSqs created for its prefix). */
export function openTestStateTable(sqs: Pick<TestSqs, 'dynamodbEndpoint' | 'region' | 'prefix'>, service: 'interface' | 'app' = 'interface'): StateTable {
  return openStateTable({
    table: stateTableName(sqs.prefix, service),
    region: sqs.region,
    endpoint: sqs.dynamodbEndpoint,
    ...(process.env.DYNAMODB_ENDPOINT ? {} : { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
  });
}

/**
 * For a test file: a fresh SQS and DynamoDB backend with `service`'s state table, opened before the
 * file's tests and closed after them. Read `.table` inside the tests.
 */
export function useTestStateTable(service: 'interface' | 'app' = 'interface'): { readonly table: StateTable } {
  let backend: TestSqs | undefined;
  let table: StateTable | undefined;
  beforeAll(async () => {
    backend = await startTestSqs();
    table = openTestStateTable(backend, service);
  });
  afterAll(async () => {
    await table?.close();
    await backend?.stop();
  });
  return {
    get table(): StateTable {
      if (!table) throw new Error('the state table opens in beforeAll: read it inside a test');
      return table;
    },
  };
}
