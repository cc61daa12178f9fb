import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAppConfig } from '../../services/app/config.ts';
import { startAppService, type AppService } from '../../services/app/service.ts';
import { hashToken } from '../../services/core/http/auth.ts';
import { ensureQueues, type EnsuredQueue, type LogicalQueue } from '../../services/core/transport/queues.ts';
import { startEmrSink, type EmrSink } from '../../services/devtools/emrSink.ts';
import { loadInterfaceConfig } from '../../services/interface/config.ts';
import { startInterfaceService, type InterfaceService } from '../../services/interface/service.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from './keys.ts';
import { captureLogger, type CapturedLogger } from './logs.ts';
import { startTestSqs, type TestSqs } from './sqs.ts';

/** Bearer tokens the stack's token files accept. */
export interface StackTokens {
  partner: string;
  reader: string;
  writer: string;
  messenger: string;
  admin: string;
}

/** Both services in-process on real queues, a real EMR sink and captured logs. */
export interface TestStack {
  sqs: TestSqs;
  queues: Record<LogicalQueue, EnsuredQueue>;
  keys: TestServiceKeyPair;
  sink: EmrSink;
  tokens: StackTokens;
  dir: string;
  iface: InterfaceService;
  app: AppService;
  logs: { iface: CapturedLogger; app: CapturedLogger };
  /** Environment the services were configured from (for restarting one). */
  env: { iface: Record<string, string>; app: Record<string, string> };
  /** Stops the app service gracefully and starts a new one on the same queues. */
  restartApp(): Promise<AppService>;
  stop(): Promise<void>;
}

/** Options for {@link startStack}. */
export interface StackOptions {
  /** Extra interface environment. */
  ifaceEnv?: Record<string, string>;
  /** Extra app environment. */
  appEnv?: Record<string, string>;
  /** Use this SQS endpoint instead of starting one (the stack will not stop it). */
  sqs?: TestSqs;
}

/** Starts the whole relay in one process, each service with only its own key folder. */
export async function startStack(options: StackOptions = {}): Promise<TestStack> {
  const ownSqs = !options.sqs;
  const sqs = options.sqs ?? (await startTestSqs());
  const queues = await ensureQueues(sqs.client, { prefix: sqs.prefix, maxReceiveCount: 3, visibilityTimeoutSeconds: 5 });
  const keys = await makeServiceKeyPair();
  const sink = await startEmrSink();
  const dir = await mkdtemp(join(tmpdir(), 'cr-stack-'));
  const t = (): string => randomBytes(18).toString('base64url');
  const tokens: StackTokens = { partner: t(), reader: t(), writer: t(), messenger: t(), admin: t() };
  await writeFile(join(dir, 'partners.json'), JSON.stringify({ tokens: [{ name: 'acme-health', sha256: hashToken(tokens.partner), rateLimitPerMinute: 100_000 }] }));
  await writeFile(
    join(dir, 'app-tokens.json'),
    JSON.stringify({
      tokens: [
        { name: 'reader', sha256: hashToken(tokens.reader), roles: ['reader'] },
        { name: 'writer', sha256: hashToken(tokens.writer), roles: ['writer'] },
        { name: 'messenger', sha256: hashToken(tokens.messenger), roles: ['messenger'] },
        { name: 'admin', sha256: hashToken(tokens.admin), roles: ['admin'] },
      ],
    }),
  );
  await writeFile(join(dir, 'admins.json'), JSON.stringify({ tokens: [{ name: 'admin', sha256: hashToken(tokens.admin), roles: ['admin'] }] }));
  const common = {
    SQS_ENDPOINT: sqs.endpoint,
    AWS_REGION: sqs.region,
    QUEUE_PREFIX: sqs.prefix,
    PORT: '0',
    VISIBILITY_TIMEOUT_SECONDS: '5',
    HEARTBEAT_INTERVAL_SECONDS: '2',
    MAX_CLOCK_SKEW_SECONDS: '60',
    SHUTDOWN_DEADLINE_MS: '3000',
  };
  const env = {
    iface: {
      ...common,
      KEYS_DIR: keys.interface.dir,
      KEY_PASSPHRASE: keys.interface.passphrase,
      AUDIT_FILE: join(dir, 'interface-audit.jsonl'),
      HMAC_KEY: randomBytes(32).toString('hex'),
      PARTNERS_FILE: join(dir, 'partners.json'),
      ADMIN_TOKENS_FILE: join(dir, 'admins.json'),
      EMR_URL: `${sink.url}/deliveries`,
      EMR_TIMEOUT_MS: '2000',
      ...options.ifaceEnv,
    },
    app: {
      ...common,
      KEYS_DIR: keys.app.dir,
      KEY_PASSPHRASE: keys.app.passphrase,
      AUDIT_FILE: join(dir, 'app-audit.jsonl'),
      HMAC_KEY: randomBytes(32).toString('hex'),
      APP_TOKENS_FILE: join(dir, 'app-tokens.json'),
      ...options.appEnv,
    },
  };
  const logs = { iface: captureLogger('interface'), app: captureLogger('app') };
  const iface = await startInterfaceService(loadInterfaceConfig(env.iface), { logger: logs.iface.logger, listen: false });
  let app = await startAppService(loadAppConfig(env.app), { logger: logs.app.logger, listen: false });
  const stack: TestStack = {
    sqs,
    queues,
    keys,
    sink,
    tokens,
    dir,
    iface,
    app,
    logs,
    env,
    async restartApp() {
      await app.stop();
      app = await startAppService(loadAppConfig(env.app), { logger: logs.app.logger, listen: false });
      stack.app = app;
      return app;
    },
    async stop() {
      await Promise.allSettled([stack.iface.stop(), stack.app.stop()]);
      await sink.stop();
      if (ownSqs) await sqs.stop();
      await keys.cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return stack;
}
