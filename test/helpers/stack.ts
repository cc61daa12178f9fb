import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAppConfig } from '../../services/app/config.ts';
import { startAppService, type AppService } from '../../services/app/service.ts';
import { ensureQueues, type EnsuredQueue, type LogicalQueue } from '../../services/core/transport/queues.ts';
import { startEmrSink, type EmrSink } from '../../services/devtools/emrSink.ts';
import { loadInterfaceConfig } from '../../services/interface/config.ts';
import { startInterfaceService, type InterfaceService } from '../../services/interface/service.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from './keys.ts';
import { captureLogger, type CapturedLogger } from './logs.ts';
import { writeServiceEnv, type ServiceTokens } from './serviceEnv.ts';
import { startTestSqs, type TestSqs } from './sqs.ts';

/** Bearer tokens the stack's token files accept. */
export type StackTokens = ServiceTokens;

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
  const queues = await ensureQueues(sqs.client, { prefix: sqs.prefix, fifo: sqs.fifo, maxReceiveCount: 3, visibilityTimeoutSeconds: 5 });
  const keys = await makeServiceKeyPair();
  const sink = await startEmrSink();
  const dir = await mkdtemp(join(tmpdir(), 'cr-stack-'));
  const written = await writeServiceEnv(dir, sqs, keys, {
    iface: { ...sink.serviceEnv(), ...options.ifaceEnv },
    app: { ...options.appEnv },
  });
  const { tokens } = written;
  const env = { iface: written.iface, app: written.app };
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
