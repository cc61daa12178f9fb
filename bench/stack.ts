// Both services in this process on the in-process SQS emulator and DynamoDB store (the state
// tables), the interface listening on a
// real socket; each service with only its own key folder, logging at info to nowhere.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request, type Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SQSClient } from '@aws-sdk/client-sqs';
import { loadAppConfig } from '../services/app/config.ts';
import { startAppService, type AppService } from '../services/app/service.ts';
import { hashToken } from '../services/core/http/auth.ts';
import { createLogger } from '../services/core/log/logger.ts';
import { createDynamoClient, type StateTable } from '../services/core/state/table.ts';
import { ensureStateTable, STATE_SERVICES, stateTableName } from '../services/core/state/tables.ts';
import { ensureQueues } from '../services/core/transport/queues.ts';
import { startEmbeddedDynamo } from '../services/devtools/embeddedDynamo.ts';
import { startSqsEmulator } from '../services/devtools/sqsEmulator.ts';
import { loadInterfaceConfig } from '../services/interface/config.ts';
import { startInterfaceService, type InterfaceService } from '../services/interface/service.ts';
import { nullDestination, type BenchKeys } from './lib.ts';

/** The SQS emulator with a client, and the embedded DynamoDB store for the state tables. */
export interface BenchSqs {
  /** Endpoint URL. */
  endpoint: string;
  /** The environment a service needs to reach it. */
  serviceEnv(): Record<string, string>;
  /** A client for it. */
  client: SQSClient;
  /** Creates both services' state tables for a queue prefix (as `queues init` does). */
  ensureTables(prefix: string): Promise<void>;
  /** Stops the emulator and the store. */
  stop(): Promise<void>;
  /**
   * CPU µs the emulators' own process has used so far (all its threads), when they run in a child process
   * (`--emulators=child`); undefined when they run in this process, whose `process.cpuUsage()` then counts them.
   */
  emulatorCpuUs(): number | undefined;
}

/** CPU µs a process has used (user + system, all threads), from `/proc/<pid>/stat`; undefined where it cannot be read. */
function procCpuUs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields 14 and 15 (utime, stime) in clock ticks, counted after the command name's closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicks();
  } catch {
    return undefined;
  }
}

let ticks: number | undefined;
/** The kernel's clock ticks per second (`getconf CLK_TCK`, 100 on Linux unless configured otherwise). */
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** What a service needs to reach the emulators, wherever they run. */
interface EmulatorEndpoints {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  dynamodbEndpoint: string;
  serviceEnv: Record<string, string>;
}

/** Starts fauxqs and dynalite on loopback: in this process, or (`child`) in a process of their own (emulatorsChild.ts). */
export async function startBenchSqs(where: 'process' | 'child' = 'process'): Promise<BenchSqs> {
  let endpoints: EmulatorEndpoints;
  let stopEmulators: () => Promise<void>;
  let emulatorPid: number | undefined;
  if (where === 'child') {
    const child = spawn(process.execPath, [join(import.meta.dirname, 'emulatorsChild.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
    emulatorPid = child.pid;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    const ready = once(createInterface({ input: child.stdout! }), 'line').then(([line]) => line as string);
    const died = exited.then(() => Promise.reject(new Error('the emulators\' child process exited before it printed its endpoints')));
    endpoints = JSON.parse(await Promise.race([ready, died])) as EmulatorEndpoints;
    stopEmulators = async () => {
      child.kill('SIGTERM');
      await exited;
    };
  } else {
    const server = await startSqsEmulator();
    const store = await startEmbeddedDynamo();
    endpoints = { endpoint: server.endpoint, region: server.region, credentials: server.credentials, dynamodbEndpoint: store.endpoint, serviceEnv: { ...server.serviceEnv(), DYNAMODB_ENDPOINT: store.endpoint } };
    stopEmulators = async () => {
      await server.stop();
      await store.stop();
    };
  }
  const client = new SQSClient({ endpoint: endpoints.endpoint, region: endpoints.region, credentials: endpoints.credentials });
  const dynamo = createDynamoClient({ endpoint: endpoints.dynamodbEndpoint, region: endpoints.region, credentials: endpoints.credentials });
  return {
    endpoint: endpoints.endpoint,
    serviceEnv: () => ({ ...endpoints.serviceEnv }),
    client,
    emulatorCpuUs: () => procCpuUs(emulatorPid),
    async ensureTables(prefix) {
      for (const service of STATE_SERVICES) await ensureStateTable(dynamo, stateTableName(prefix, service));
    },
    stop: async () => {
      client.destroy();
      dynamo.destroy();
      await stopEmulators();
    },
  };
}

/** A running relay: interface (listening) and app. */
export interface BenchStack {
  /** The interface service. */
  iface: InterfaceService;
  /** The app service. */
  app: AppService;
  /** Base URL of the interface's HTTP server. */
  url: string;
  /** The partner's bearer token. */
  partnerToken: string;
  /** Stops both services and removes the temp files. */
  stop(): Promise<void>;
}

/** Environment shared by both services in the bench (and the memory child). */
export function commonEnv(sqs: Pick<BenchSqs, 'serviceEnv'>, prefix: string, cryptoWorkers?: string): Record<string, string> {
  return {
    ...(cryptoWorkers === undefined ? {} : { CRYPTO_WORKERS: cryptoWorkers }),
    // The bench's own choice (benchInline), for the services it starts.
    ...(process.env.CRYPTO_INLINE === undefined ? {} : { CRYPTO_INLINE: process.env.CRYPTO_INLINE }),
    ...sqs.serviceEnv(),
    QUEUE_PREFIX: prefix,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    VISIBILITY_TIMEOUT_SECONDS: '60',
    HEARTBEAT_INTERVAL_SECONDS: '20',
    SHUTDOWN_DEADLINE_MS: '2000',
  };
}

/** Writes the app's API tokens file (one reader token) into `dir`; returns its path and the token. */
export async function writeAppTokens(dir: string): Promise<{ file: string; token: string }> {
  const token = randomBytes(18).toString('base64url');
  const file = join(dir, 'app-tokens.json');
  await writeFile(file, JSON.stringify({ tokens: [{ name: 'bench-reader', sha256: hashToken(token), roles: ['reader'] }] }));
  return { file, token };
}

/**
 * What both services of a bench run need: fresh queues and state tables under `prefix`, and a
 * folder (`folder` + random) with the partners file (one partner token, rate limit out of the
 * way) and the app's tokens file (one reader token).
 */
export async function prepareServices(sqs: BenchSqs, prefix: string, folder: string): Promise<{ dir: string; partnerToken: string; appTokens: { file: string; token: string } }> {
  await ensureQueues(sqs.client, { prefix, maxReceiveCount: 5, visibilityTimeoutSeconds: 60 });
  await sqs.ensureTables(prefix);
  const dir = await mkdtemp(join(tmpdir(), folder));
  const partnerToken = randomBytes(18).toString('base64url');
  await writeFile(join(dir, 'partners.json'), JSON.stringify({ tokens: [{ name: 'bench-partner', sha256: hashToken(partnerToken), rateLimitPerMinute: 100_000 }] }));
  return { dir, partnerToken, appTokens: await writeAppTokens(dir) };
}

/** Starts both services on fresh queues (`prefix`), with the crypto pools CRYPTO_WORKERS defaults to; `stateTable` replaces the DynamoDB store (bench (9)). */
export async function startBenchStack(sqs: BenchSqs, keys: BenchKeys, prefix: string, cryptoWorkers?: string, stateTable?: (name: string) => StateTable): Promise<BenchStack> {
  const { dir, partnerToken, appTokens } = await prepareServices(sqs, prefix, 'crb-stack-');
  // The services' SQS clients use the default credential chain: give it the emulator's.
  process.env.AWS_ACCESS_KEY_ID ??= 'bench';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
  const common = commonEnv(sqs, prefix, cryptoWorkers);
  const iface = await startInterfaceService(
    loadInterfaceConfig({
      ...common,
      KEYS_DIR: keys.interface.dir,
      KEY_PASSPHRASE: keys.passphrase,
      AUDIT_FILE: join(dir, 'interface-audit.jsonl'),
      HMAC_KEY: randomBytes(32).toString('hex'),
      PARTNERS_FILE: join(dir, 'partners.json'),
      EMR_URL: 'http://127.0.0.1:9/deliveries',
    }),
    { logger: createLogger({ service: 'interface', level: 'info', destination: nullDestination() }), ...(stateTable ? { stateTable } : {}) },
  );
  const app = await startAppService(
    loadAppConfig({
      ...common,
      KEYS_DIR: keys.app.dir,
      KEY_PASSPHRASE: keys.passphrase,
      AUDIT_FILE: join(dir, 'app-audit.jsonl'),
      HMAC_KEY: randomBytes(32).toString('hex'),
      APP_TOKENS_FILE: appTokens.file,
    }),
    { logger: createLogger({ service: 'app', level: 'info', destination: nullDestination() }), listen: false, ...(stateTable ? { stateTable } : {}) },
  );
  const port = (iface.server.server.address() as AddressInfo).port;
  return {
    iface,
    app,
    url: `http://127.0.0.1:${port}`,
    partnerToken,
    async stop() {
      await Promise.allSettled([iface.stop(), app.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One submission on a kept-alive agent: resolves with the envelope id of the 202, rejects on any other answer. */
export function submitOnce(url: string, token: string, agent: Agent, body: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/submissions`, { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 202 ? resolve((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string }).id) : reject(new Error(`intake answered ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
