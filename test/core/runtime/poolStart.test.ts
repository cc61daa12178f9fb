// The crypto worker pool starts while the rest of the runtime does (its workers load modules and
// keys for seconds on a busy host); a start that fails meanwhile closes it, started or not.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type * as CryptoPoolModule from '../../../services/core/relay/cryptoPool.ts';
import type { CryptoPool } from '../../../services/core/relay/cryptoPool.ts';
import { startRuntime } from '../../../services/core/runtime/runtime.ts';
import { stateTableName } from '../../../services/core/state/tables.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';
import { captureLogger } from '../../helpers/logs.ts';
import { startTestSqs, type TestSqs } from '../../helpers/sqs.ts';

const pools: CryptoPool[] = [];
vi.mock('../../../services/core/relay/cryptoPool.ts', async (importOriginal) => {
  const real = await importOriginal<typeof CryptoPoolModule>();
  return { ...real, createCryptoPool: async (...args: Parameters<typeof real.createCryptoPool>) => {
    const pool = await real.createCryptoPool(...args);
    pools.push(pool);
    return pool;
  } };
});

let sqs: TestSqs;
let keys: TestServiceKeyPair;
let dir: string;

beforeAll(async () => {
  sqs = await startTestSqs();
  keys = await makeServiceKeyPair();
  dir = await mkdtemp(join(tmpdir(), 'cr-pool-start-'));
});

afterAll(async () => {
  await sqs?.stop();
  await keys?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('a start that fails while the worker pool is starting (a missing queue) closes the pool', async () => {
  const endpoint = sqs.serviceEnv();
  const { logger } = captureLogger('interface');
  await expect(
    startRuntime({
      service: 'interface',
      logger,
      queues: ['app-to-interface'],
      config: {
        LOG_LEVEL: 'debug',
        KEYS_DIR: keys.interface.dir,
        KEY_PASSPHRASE: keys.interface.passphrase,
        SQS_ENDPOINT: endpoint.SQS_ENDPOINT,
        DYNAMODB_ENDPOINT: endpoint.DYNAMODB_ENDPOINT,
        AWS_REGION: sqs.region,
        QUEUE_PREFIX: `${sqs.prefix}absent-`,
        STATE_TABLE: stateTableName(sqs.prefix, 'interface'),
        QUEUE_FIFO: false,
        AUDIT_FILE: join(dir, 'audit.jsonl'),
        HMAC_KEY: 'k'.repeat(64),
        MAX_CLOCK_SKEW_SECONDS: 60,
        MESSAGE_MAX_AGE_SECONDS: 3600,
        EMERGENCY_MODE: false,
        AUDIT_CHECKPOINT_INTERVAL_SECONDS: 300,
        AUTH_FAILURE_LIMIT: 10,
        AUTH_FAILURE_WINDOW_SECONDS: 60,
        CRYPTO_WORKERS: 1,
      },
    }),
  ).rejects.toThrow(/app-to-interface/);
  expect(pools).toHaveLength(1);
  expect(pools[0]!.threads, 'no worker left running').toBe(0);
});
