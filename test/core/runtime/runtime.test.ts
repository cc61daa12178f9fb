// startRuntime against the real emulator and real keys: what it opens, it closes again on failure.
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { verifyAuditFile } from '../../../services/core/audit/verify.ts';
import type { ServiceKeys } from '../../../services/core/keys/load.ts';
import { localCrypto, type RelayCrypto } from '../../../services/core/relay/crypto.ts';
import type * as CryptoPoolModule from '../../../services/core/relay/cryptoPool.ts';
import type { CryptoPool } from '../../../services/core/relay/cryptoPool.ts';
import { startRuntime, type RuntimeConfig } from '../../../services/core/runtime/runtime.ts';
import { inlineSubtleInstalled, installInlineSubtle, uninstallInlineSubtle } from '../../../services/core/envelope/inlineSubtle.ts';
import { stateTableName } from '../../../services/core/state/tables.ts';
import { ensureQueues } from '../../../services/core/transport/queues.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';
import { captureLogger } from '../../helpers/logs.ts';
import { startTestSqs, type TestSqs } from '../../helpers/sqs.ts';

// The real worker pools the runtime creates, kept to check that a failed start closed them.
const pools: CryptoPool[] = [];
vi.mock('../../../services/core/relay/cryptoPool.ts', async (importOriginal) => {
  const real = await importOriginal<typeof CryptoPoolModule>();
  return {
    ...real,
    createCryptoPool: async (...args: Parameters<typeof real.createCryptoPool>) => {
      const pool = await real.createCryptoPool(...args);
      pools.push(pool);
      return pool;
    },
  };
});

let sqs: TestSqs;
let keys: TestServiceKeyPair;
let dir: string;

beforeAll(async () => {
  sqs = await startTestSqs();
  await ensureQueues(sqs.client, { prefix: sqs.prefix, queues: ['interface-to-app', 'app-to-interface'] });
  keys = await makeServiceKeyPair();
  dir = await mkdtemp(join(tmpdir(), 'cr-runtime-'));
});

afterAll(async () => {
  await sqs?.stop();
  await keys?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function config(overrides: Partial<RuntimeConfig> = {}): RuntimeConfig {
  const endpoint = sqs.serviceEnv();
  return {
    LOG_LEVEL: 'debug',
    KEYS_DIR: keys.interface.dir,
    KEY_PASSPHRASE: keys.interface.passphrase,
    SQS_ENDPOINT: endpoint.SQS_ENDPOINT,
    DYNAMODB_ENDPOINT: endpoint.DYNAMODB_ENDPOINT,
    AWS_REGION: sqs.region,
    QUEUE_PREFIX: sqs.prefix,
    QUEUE_FIFO: false,
    AUDIT_FILE: join(dir, `audit-${Math.random().toString(36).slice(2)}.jsonl`),
    HMAC_KEY: 'k'.repeat(64),
    MAX_CLOCK_SKEW_SECONDS: 60,
    MESSAGE_MAX_AGE_SECONDS: 3600,
    EMERGENCY_MODE: false,
    AUDIT_CHECKPOINT_INTERVAL_SECONDS: 300,
    AUTH_FAILURE_LIMIT: 10,
    AUTH_FAILURE_WINDOW_SECONDS: 60,
    ...overrides,
  };
}

/** In-thread crypto that counts its close() calls, standing in for the worker pool. */
function countingCrypto(): { factory: (k: ServiceKeys) => RelayCrypto; closed: () => number } {
  let closed = 0;
  return {
    factory: (k) => {
      const inner = localCrypto(k, { self: 'interface', maxSkewMs: 60_000, maxAgeMs: 3_600_000 });
      return { seal: (e) => inner.seal(e), open: (a, c) => inner.open(a, c), close: async () => void closed++ };
    },
    closed: () => closed,
  };
}

describe('startRuntime', () => {
  it('closes the crypto pool when the start fails after the pool was created (it leaked before)', async () => {
    const crypto = countingCrypto();
    const { logger } = captureLogger('interface');
    // The last step of the start (EMERGENCY_MODE's warning line) throws, after the crypto exists.
    logger.warn = (() => {
      throw new Error('log destination gone');
    }) as typeof logger.warn;
    await expect(startRuntime({ service: 'interface', config: config({ EMERGENCY_MODE: true }), queues: ['app-to-interface'], logger, crypto: crypto.factory })).rejects.toThrow(
      'log destination gone',
    );
    expect(crypto.closed()).toBe(1);
  });

  it('creates no crypto at all when an earlier step fails (a missing queue), and says which queue', async () => {
    const crypto = countingCrypto();
    const { logger } = captureLogger('interface');
    await expect(
      startRuntime({ service: 'interface', config: config({ QUEUE_PREFIX: `${sqs.prefix}absent-`, STATE_TABLE: stateTableName(sqs.prefix, 'interface') }), queues: ['app-to-interface'], logger, crypto: crypto.factory }),
    ).rejects.toThrow(/app-to-interface/);
    expect(crypto.closed()).toBe(0);
  });

  it('starts the worker pool while the rest starts, and closes it when the start fails meanwhile (a missing queue)', async () => {
    const { logger } = captureLogger('interface');
    const before = pools.length;
    await expect(
      startRuntime({ service: 'interface', config: config({ QUEUE_PREFIX: `${sqs.prefix}absent-`, STATE_TABLE: stateTableName(sqs.prefix, 'interface'), CRYPTO_WORKERS: 1 }), queues: ['app-to-interface'], logger }),
    ).rejects.toThrow(/app-to-interface/);
    expect(pools.length - before, 'the pool was already starting').toBe(1);
    expect(pools.at(-1)!.threads, 'no worker left running').toBe(0);
  });

  it('refuses to start without its state table (CR_STATE_TABLE_MISSING, naming the table), creating no crypto', async () => {
    const crypto = countingCrypto();
    const { logger } = captureLogger('interface');
    await expect(
      startRuntime({ service: 'interface', config: config({ STATE_TABLE: `${sqs.prefix}no-such-state` }), queues: ['app-to-interface'], logger, crypto: crypto.factory }),
    ).rejects.toMatchObject({ code: 'CR_STATE_TABLE_MISSING', message: expect.stringContaining(`${sqs.prefix}no-such-state`) });
    expect(crypto.closed()).toBe(0);
  });

  it('closes the crypto exactly once through close() after a successful start', async () => {
    const crypto = countingCrypto();
    const { logger } = captureLogger('interface');
    const rt = await startRuntime({ service: 'interface', config: config({ EMERGENCY_MODE: true }), queues: ['app-to-interface'], logger, crypto: crypto.factory });
    expect(rt.emergency.active).toBe(true);
    expect(crypto.closed()).toBe(0);
    await rt.close();
    expect(crypto.closed()).toBe(1);
  });

  it('starts after a crash cut an audit write short: the incomplete line is kept aside, audited, and the chain goes on', async () => {
    const cfg = config({ EMERGENCY_MODE: true });
    const first = await startRuntime({ service: 'interface', config: cfg, queues: ['app-to-interface'], logger: captureLogger('interface').logger });
    await first.close();
    const before = (await readFile(cfg.AUDIT_FILE, 'utf8')).trimEnd().split('\n');
    // What kill -9 in the middle of a write leaves: the start of a line, no newline.
    const torn = '{"seq":' + String(before.length + 1) + ',"ts":"2026-12-02T14:4';
    await appendFile(cfg.AUDIT_FILE, torn);
    const { logger, entries } = captureLogger('interface');
    const second = await startRuntime({ service: 'interface', config: cfg, queues: ['app-to-interface'], logger });
    await second.close();
    const after = (await readFile(cfg.AUDIT_FILE, 'utf8')).split('\n');
    expect(after.slice(0, before.length)).toEqual(before);
    const line = after.map((l) => (l ? (JSON.parse(l) as { seq: number; action: string; actor: string; details?: Record<string, unknown> }) : undefined)).find((e) => e?.action === 'audit.torn_tail');
    expect(line).toMatchObject({ seq: before.length + 1, actor: 'interface', details: { of: 'trail', bytes: torn.length, afterSeq: before.length } });
    const savedAs = line!.details!.savedAs as string;
    expect(await readFile(savedAs, 'utf8')).toBe(torn);
    expect(await verifyAuditFile(cfg.AUDIT_FILE)).toMatchObject({ ok: true });
    expect(entries().find((e) => e.savedAs === savedAs)).toMatchObject({ level: 40, bytes: torn.length });
  });

  it('runs openpgp.js\'s curve and key-wrap calls on the calling thread unless CRYPTO_INLINE is false', async () => {
    const { logger } = captureLogger('interface');
    uninstallInlineSubtle();
    try {
      const off = await startRuntime({ service: 'interface', config: config({ CRYPTO_INLINE: false }), queues: ['app-to-interface'], logger });
      expect(inlineSubtleInstalled()).toBe(false);
      await off.close();
      const on = await startRuntime({ service: 'interface', config: config(), queues: ['app-to-interface'], logger });
      expect(inlineSubtleInstalled()).toBe(true);
      await on.close();
    } finally {
      installInlineSubtle();
    }
  });
});
