// `care-relay dev` (what `npm start` runs): the embedded default. Creates dev keys and
// secrets if missing, starts the SQS emulator in-process with every queue, the embedded DynamoDB store with the state tables, a demo EMR
// sink, a fake SignalWire when no credentials are set, then the interface and app
// services as separate processes, each given only its own key folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { hashToken } from '../core/http/auth.ts';
import { createSnsClient } from '../core/alerts/snsNotifier.ts';
import { alertTopicName, ensureAlertTopic } from '../core/alerts/topic.ts';
import { createDynamoClient } from '../core/state/table.ts';
import { ensureStateTable, STATE_SERVICES, stateTableName } from '../core/state/tables.ts';
import { SERVICE_NODE_FLAGS } from '../core/runtime/nodeFlags.ts';
import { ensureQueues } from '../core/transport/queues.ts';
import { createSqsClient } from '../core/transport/sqsClient.ts';
import { ensureDevAuditArchive } from '../devtools/auditArchiveBucket.ts';
import { startEmbeddedDynamo } from '../devtools/embeddedDynamo.ts';
import { startEmrSink } from '../devtools/emrSink.ts';
import { startMllpSink } from '../devtools/mllpSink.ts';
import { startSqsEmulator } from '../devtools/sqsEmulator.ts';

/** The bucket of large documents in the emulator's S3. */
const DEV_OBJECT_BUCKET = 'care-relay-dev-objects';

// A synthetic lab result for the MLLP example (no real patient).
const EXAMPLE_HL7 = ['MSH|^~\\&|DEMO-LIS|DEMO-LAB|CARE-RELAY|DEMO|20260101120000||ORU^R01^ORU_R01|DEMO-0001|P|2.5.1', 'PID|1||DEMO-1^^^DEMO-LAB^MR||Example^Pat', 'OBX|1|TX|NOTE^Note||synthetic result'].join('\n') + '\n';

/** Help of `care-relay dev`. */
export const usage = `usage: care-relay dev [--data DIR] [--keys DIR] [--ready-timeout SECONDS]

Runs everything locally: SQS emulator, demo EMR sink, fake SignalWire (unless
SIGNALWIRE_PROJECT_ID is set), the interface service and the app service.
  --data DIR   dev state, kept across restarts: the queues (sqs/), tokens and
               audit trails (default .data/dev)
  --keys DIR   key folders (default keys); created with \`keys init\` if missing
  --ready-timeout SECONDS  how long each service may take to become ready (default 30)
Ports: INTERFACE_PORT (8080), APP_PORT (8081), EMR_SINK_PORT (8090), SQS_PORT (4566),
MLLP_PORT (2575, partner intake over MLLP), EMR_MLLP_SINK_PORT (2576, the sink's MLLP side).`;

interface DevSecrets {
  partnerToken: string;
  readerToken: string;
  writerToken: string;
  messengerToken: string;
  adminToken: string;
  hmacKeyInterface: string;
  hmacKeyApp: string;
}

/** The options of `dev` (node:util parseArgs form): the runner declares them to commander, which checks them before `run`. */
export const OPTIONS = { data: { type: 'string' }, keys: { type: 'string' }, 'ready-timeout': { type: 'string' } } as const;

function option(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
}

function token(): string {
  return randomBytes(24).toString('base64url');
}

async function loadSecrets(dir: string): Promise<DevSecrets> {
  const file = join(dir, 'secrets.json');
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as DevSecrets;
  const secrets: DevSecrets = {
    partnerToken: token(),
    readerToken: token(),
    writerToken: token(),
    messengerToken: token(),
    adminToken: token(),
    hmacKeyInterface: randomBytes(32).toString('hex'),
    hmacKeyApp: randomBytes(32).toString('hex'),
  };
  await writeFile(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

/** Writes the demo token files only where missing: tokens an operator added (`care-relay tokens`) stay. */
async function ensureTokenFiles(dir: string, s: DevSecrets): Promise<void> {
  const partners = {
    tokens: [
      { name: 'demo-partner', sha256: hashToken(s.partnerToken), contentTypes: ['application/fhir+json', 'application/hl7-v2', 'application/xml'] },
      // MLLP on loopback: recognised by source address plus MSH-4 (its token is never handed out).
      { name: 'demo-mllp-partner', sha256: hashToken(randomBytes(24).toString('hex')), allowCidrs: ['127.0.0.1/32', '::1/128'], mllp: { sendingFacilities: ['DEMO-LAB'] } },
    ],
  };
  const app = {
    tokens: [
      { name: 'demo-reader', sha256: hashToken(s.readerToken), roles: ['reader'] },
      { name: 'demo-writer', sha256: hashToken(s.writerToken), roles: ['writer'] },
      { name: 'demo-messenger', sha256: hashToken(s.messengerToken), roles: ['messenger'] },
      { name: 'demo-admin', sha256: hashToken(s.adminToken), roles: ['admin'] },
    ],
  };
  const admins = { tokens: [{ name: 'demo-admin', sha256: hashToken(s.adminToken), roles: ['admin'] }] };
  const files: Array<[string, unknown]> = [
    ['partners.json', partners],
    ['app-tokens.json', app],
    ['admin-tokens.json', admins],
  ];
  for (const [name, content] of files) {
    // 'wx' fails when the file exists: an existing file is the operator's, never rewritten.
    await writeFile(join(dir, name), JSON.stringify(content, null, 2), { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
}

async function waitReady(url: string, child: ChildProcess, name: string, deadlineMs = 30_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode} before it was ready (see its output above)`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} was not ready within ${deadlineMs / 1000} s`);
}

function prefixOutput(child: ChildProcess, name: string): void {
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = '';
    stream?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        process.stdout.write(`[${name}] ${buffered.slice(0, nl)}\n`);
        buffered = buffered.slice(nl + 1);
      }
    });
  }
}

/** Runs the local stack until Ctrl-C. */
export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage);
    return 0;
  }
  const env = process.env;
  const dataDir = resolve(option(argv, '--data', '.data/dev'));
  const keysDir = resolve(option(argv, '--keys', 'keys'));
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const ports = {
    interface: Number(env.INTERFACE_PORT ?? 8080),
    app: Number(env.APP_PORT ?? 8081),
    sink: Number(env.EMR_SINK_PORT ?? 8090),
    sqs: Number(env.SQS_PORT ?? 4566),
    mllp: Number(env.MLLP_PORT ?? 2575),
    mllpSink: Number(env.EMR_MLLP_SINK_PORT ?? 2576),
  };

  if (!existsSync(join(keysDir, 'app', 'private.asc')) || !existsSync(join(keysDir, 'interface', 'private.asc'))) {
    console.log(`No keys in ${keysDir}: creating dev keys (care-relay keys init).`);
    const keys = (await import('./keys.ts')) as { run: (argv: string[]) => Promise<number> };
    const code = await keys.run(['init', '--dir', keysDir]);
    if (code !== 0) return code;
  }
  const passphraseFile = (service: string): Record<string, string> =>
    env.CARE_RELAY_KEY_PASSPHRASE ? { KEY_PASSPHRASE: env.CARE_RELAY_KEY_PASSPHRASE } : { KEY_PASSPHRASE_FILE: join(keysDir, service, 'passphrase') };

  const secrets = await loadSecrets(dataDir);
  await ensureTokenFiles(dataDir, secrets);

  // Persisted under the data folder: a stop or a crash of the whole stack loses no queued
  // and no in-flight message (records held in the inbox come back after their visibility).
  const sqsServer = await startSqsEmulator({ port: ports.sqs, dataDir: join(dataDir, 'sqs') });
  const sqsEndpoint = sqsServer.endpoint;
  const sqs = createSqsClient({ endpoint: sqsEndpoint, region: sqsServer.region, credentials: sqsServer.credentials });
  await ensureQueues(sqs, { prefix: '' });
  sqs.destroy();
  // The emulator serves SNS too: both services send their alert notifications to this topic.
  const sns = createSnsClient({ endpoint: sqsEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'dev', secretAccessKey: 'dev' } });
  const alertTopicArn = await ensureAlertTopic(sns, alertTopicName(''));
  sns.destroy();
  // Large documents go to the emulator's S3, in the bucket `queues init` would create.
  const { S3Client } = await import('@aws-sdk/client-s3');
  const { ensureObjectBucket } = await import('../core/objects/bucket.ts');
  const s3 = new S3Client({ endpoint: sqsEndpoint, region: sqsServer.region, credentials: sqsServer.credentials, forcePathStyle: true });
  await ensureObjectBucket(s3, { bucket: DEV_OBJECT_BUCKET, region: sqsServer.region, expireAfterDays: 5 });
  s3.destroy();
  // And S3: each service ships its closed audit segments to the archive bucket there.
  const auditArchive = await ensureDevAuditArchive(sqsEndpoint, sqsServer.credentials, env);

  // The state tables persist under the data folder: idempotency keys and applied ids survive a restart.
  const store = await startEmbeddedDynamo({ path: join(dataDir, 'dynamo') });
  const dynamo = createDynamoClient({ endpoint: store.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'dev', secretAccessKey: 'dev' } });
  for (const service of STATE_SERVICES) await ensureStateTable(dynamo, stateTableName('', service));
  dynamo.destroy();

  const sink = await startEmrSink({
    port: ports.sink,
    onDelivery: (d) => console.log(`[emr-sink] received chart update ${d.envelopeId} (${d.contentType}, ${d.bytes} bytes)`),
  });

  const mllpSink = await startMllpSink({
    port: ports.mllpSink,
    onDelivery: (d) => console.log(`[emr-sink] received an HL7 v2 message over MLLP (${d.bytes} bytes)`),
  });
  const exampleHl7 = join(dataDir, 'example-oru.hl7');
  await writeFile(exampleHl7, EXAMPLE_HL7);

  const signalwire: Record<string, string> = {};
  let stopSignalWire: (() => Promise<void>) | undefined;
  if (env.SIGNALWIRE_PROJECT_ID) {
    for (const name of ['SIGNALWIRE_PROJECT_ID', 'SIGNALWIRE_API_TOKEN', 'SIGNALWIRE_SPACE_URL', 'SIGNALWIRE_SIGNING_KEY', 'SIGNALWIRE_FROM_NUMBER', 'PUBLIC_BASE_URL']) {
      if (env[name]) signalwire[name] = env[name]!;
    }
  } else {
    const fake = await startDevSignalWire(`http://127.0.0.1:${ports.app}`);
    Object.assign(signalwire, fake.env);
    stopSignalWire = fake.stop;
  }

  const common = {
    PATH: env.PATH ?? '',
    HOME: env.HOME ?? '',
    LOG_LEVEL: env.LOG_LEVEL ?? 'info',
    ...sqsServer.serviceEnv(),
    DYNAMODB_ENDPOINT: store.endpoint,
    VISIBILITY_TIMEOUT_SECONDS: '30',
    HEARTBEAT_INTERVAL_SECONDS: '10',
    ALERT_SNS_TOPIC_ARN: alertTopicArn,
    LARGE_OBJECT_BUCKET: DEV_OBJECT_BUCKET,
    LARGE_OBJECT_S3_ENDPOINT: sqsEndpoint,
    ...auditArchive,
  };
  // Node keeps the services' compiled code in the checkout's ignored .data folder (or where
  // NODE_COMPILE_CACHE says), so a restart compiles nothing again; never in --data, which a
  // test removes while a stopping service may still be writing its cache.
  const compileCache = env.NODE_COMPILE_CACHE ?? resolve('.data', 'compile-cache');
  const children: Array<{ name: string; child: ChildProcess; url: string }> = [];
  const spawnService = (name: 'interface' | 'app', extra: Record<string, string>): void => {
    // Each service gets only its own key folder (and nothing of the other's).
    const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, resolve('services', name, 'main.ts')], {
      env: { ...common, KEYS_DIR: join(keysDir, name), ...passphraseFile(name), AUDIT_FILE: join(dataDir, `${name}-audit.jsonl`), NODE_COMPILE_CACHE: compileCache, ...extra },
      // The IPC channel tells the service when this process is gone (then it exits too).
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // Its own process group: a terminal's Ctrl-C reaches only this command, which then stops
      // each service once with SIGTERM (a second signal would make a service exit without draining).
      detached: true,
    });
    prefixOutput(child, name);
    children.push({ name, child, url: `http://127.0.0.1:${extra.PORT}` });
  };
  spawnService('interface', {
    PORT: String(ports.interface),
    PARTNERS_FILE: join(dataDir, 'partners.json'),
    ADMIN_TOKENS_FILE: join(dataDir, 'admin-tokens.json'),
    ...sink.serviceEnv(),
    HMAC_KEY: secrets.hmacKeyInterface,
    MLLP_INTAKE_PORT: String(ports.mllp),
    // EMR_MLLP_URL=mllp://127.0.0.1:<EMR_MLLP_SINK_PORT> with EMR_MLLP_PLAIN=true sends HL7 chart updates to the sink over MLLP.
    ...(env.DEV_EMR_MLLP === 'true' ? { EMR_MLLP_URL: `mllp://127.0.0.1:${mllpSink.port}`, EMR_MLLP_PLAIN: 'true' } : {}),
  });
  spawnService('app', {
    PORT: String(ports.app),
    APP_TOKENS_FILE: join(dataDir, 'app-tokens.json'),
    HMAC_KEY: secrets.hmacKeyApp,
    ...signalwire,
  });

  // Should this command end any other way, the services (in their own process groups) end with it.
  process.once('exit', () => {
    for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });

  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log('\nStopping...');
    await Promise.all(
      children.map(
        ({ child }) =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      ),
    );
    await sink.stop();
    await mllpSink.stop();
    await stopSignalWire?.();
    await sqsServer.stop();
    await store.stop();
  };

  try {
    const readySeconds = Number(option(argv, '--ready-timeout', '30'));
    if (!Number.isInteger(readySeconds) || readySeconds < 1) throw new Error('--ready-timeout: expected a whole number of seconds');
    for (const { name, child, url } of children) await waitReady(url, child, name, readySeconds * 1000);
  } catch (err) {
    await stopAll();
    throw err;
  }

  const i = `http://127.0.0.1:${ports.interface}`;
  const a = `http://127.0.0.1:${ports.app}`;
  console.log(`
care-relay is running (dev tokens are in ${join(dataDir, 'secrets.json')}).
  interface  ${i}   (partner intake; OpenAPI at ${i}/openapi.json)
  app        ${a}   (inbox, chart updates, SMS; OpenAPI at ${a}/openapi.json)
  EMR sink   ${sink.url}/deliveries   (MLLP: 127.0.0.1:${mllpSink.port}; DEV_EMR_MLLP=true routes HL7 chart updates there)
  MLLP       127.0.0.1:${ports.mllp}   (partner intake over MLLP, plain TCP on loopback)
  SQS        ${sqsEndpoint} (in-process emulator; its S3 holds the closed audit segments: ${auditArchive.AUDIT_ARCHIVE_S3_URI})
  DynamoDB   ${store.endpoint} (in-process, state tables in ${join(dataDir, 'dynamo')})

1. Submit as the demo partner:
  curl -s -X POST ${i}/v1/submissions -H 'Authorization: Bearer ${secrets.partnerToken}' -H 'Content-Type: application/fhir+json' -d '{"resourceType":"Patient","id":"example"}'

2. Read it from the app's inbox (list, then fetch by id, then acknowledge):
  curl -s ${a}/v1/inbox -H 'Authorization: Bearer ${secrets.readerToken}'
  curl -s ${a}/v1/inbox/<id> -H 'Authorization: Bearer ${secrets.readerToken}'
  curl -s -X POST ${a}/v1/inbox/<id>/ack -H 'Authorization: Bearer ${secrets.readerToken}'

3. Send a chart update back to the EMR:
  curl -s -X POST ${a}/v1/chart-updates -H 'Authorization: Bearer ${secrets.writerToken}' -H 'Content-Type: application/hl7-v2' --data-binary $'MSH|^~\\\\&|APP|CARE|EMR|HOSP|202601011200||ORU^R01|1|P|2.5\\r'

4. Send an HL7 v2 message over MLLP as the demo MLLP partner (MSH-4 DEMO-LAB) and see the ACK:
  npx care-relay hl7 send ${exampleHl7} --to 127.0.0.1:${ports.mllp}

More tokens: npx care-relay tokens add --kind partner|app|admin --name NAME --hup ${process.pid}
Ctrl-C stops everything.`);

  await new Promise<void>((done) => {
    const onSignal = (): void => void stopAll().then(done);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    // SIGHUP reloads the token files of both services (`care-relay tokens ... --hup PID`).
    process.on('SIGHUP', () => {
      for (const { child } of children) child.kill('SIGHUP');
    });
    for (const { name, child } of children) {
      child.once('exit', (code) => {
        if (!stopping) {
          console.error(`${name} exited unexpectedly (code ${code}); stopping everything.`);
          void stopAll().then(done);
        }
      });
    }
  });
  return 0;
}

/** Starts the fake SignalWire for local development; returns the env the app needs. */
async function startDevSignalWire(appUrl: string): Promise<{ env: Record<string, string>; stop: () => Promise<void> }> {
  const { startFakeSignalWire } = await import('../devtools/signalwire/index.ts');
  const fake = await startFakeSignalWire({ fromNumber: '+15550100000' });
  return {
    env: fake.serviceEnv(appUrl),
    stop: () => fake.stop(),
  };
}
