// Shared pieces of the fault-injection suite: the emulator (restartable on the same port),
// the services as real child processes (kill -9 and restart on the same port), clients
// that retry the way a partner or the application would, and the summary line.
import { DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEnvelope } from '../../services/core/envelope/envelope.ts';
import { seal } from '../../services/core/envelope/seal.ts';
import { ensureQueues, type EnsuredQueue, type LogicalQueue } from '../../services/core/transport/queues.ts';
import { startEmbeddedDynamo } from '../../services/devtools/embeddedDynamo.ts';
import { startEmrSink, type EmrSink } from '../../services/devtools/emrSink.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../helpers/keys.ts';
import { freePort, runNode, waitReady, type RunningProcess } from '../helpers/processes.ts';
import { writeServiceEnv, type ServiceEnv } from '../helpers/serviceEnv.ts';
import { fifoSendIds, startTestSqs, type TestSqs } from '../helpers/sqs.ts';
import { createAlertTopic, type AlertTopic, type ReadNotification } from '../helpers/alertTopic.ts';
import { waitFor } from '../helpers/wait.ts';

/** FAULTS_SCALE multiplies message counts (default 1); CI on a slow runner may lower it. */
export const SCALE = Math.max(0.01, Number(process.env.FAULTS_SCALE ?? '1') || 1);

/** Scales a count, never below `min`. */
export function scaled(n: number, min = 1): number {
  return Math.max(min, Math.round(n * SCALE));
}

/** How long a (re)started service may take to answer /readyz, ms (FAULTS_READY_MS; a loaded machine needs more). */
const READY_TIMEOUT_MS = Number(process.env.FAULTS_READY_MS ?? 60_000);

/** Service log level for the suite (FAULTS_LOG_LEVEL); `info` is needed where a test reads log lines. */
export const LOG_LEVEL = process.env.FAULTS_LOG_LEVEL ?? 'warn';

/** A small seeded PRNG (mulberry32), so a failing run can be replayed with FAULTS_SEED. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What each scenario reports: one line on stdout in a stable format. */
export interface Summary {
  sent: number;
  delivered: number;
  duplicatesSuppressed: number;
  lost: number;
  /** Extra `key=value` fields after the four fixed ones. */
  extra?: Record<string, string | number>;
}

/** Prints `faults: <scenario>: sent=N delivered=N duplicates-suppressed=N lost=N [k=v ...]`. */
export function report(scenario: string, s: Summary): string {
  const extra = Object.entries(s.extra ?? {}).map(([k, v]) => ` ${k}=${v}`).join('');
  const line = `faults: ${scenario}: sent=${s.sent} delivered=${s.delivered} duplicates-suppressed=${s.duplicatesSuppressed} lost=${s.lost}${extra}`;
  console.log(line);
  return line;
}

/**
 * Prints `<label> progress t=<s>s key=value …` every `everyMs` until the returned function is
 * called: a scenario that runs out of time shows how far it got.
 */
export function progressLines(label: string, fields: () => Record<string, string | number>, everyMs = 10_000): () => void {
  const started = Date.now();
  const timer = setInterval(() => {
    const parts = Object.entries(fields()).map(([k, v]) => `${k}=${v}`);
    console.log(`${label} progress t=${((Date.now() - started) / 1000).toFixed(0)}s ${parts.join(' ')}`);
  }, everyMs);
  return () => clearInterval(timer);
}

/** An emulator that can be stopped and started again on the same endpoint, keeping its messages. */
export interface Emulator {
  /** The current endpoint handle (client, prefix). */
  sqs: TestSqs;
  /** Queue-name prefix, stable across restarts. */
  prefix: string;
  /** Stops it (the endpoint refuses connections). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data folder. */
  restart(): Promise<void>;
  /** Stops it and the state store for good. */
  dispose(): Promise<void>;
}

/** Starts the in-process emulator on a fixed port with SQLite persistence. */
export async function startEmulator(dataDir: string, fifo?: boolean): Promise<Emulator> {
  const port = await freePort();
  // The store outlives the SQS emulator's outages: it is another service.
  const store = process.env.DYNAMODB_ENDPOINT ? undefined : await startEmbeddedDynamo();
  const dynamodbEndpoint = process.env.DYNAMODB_ENDPOINT ?? store!.endpoint;
  const queues = fifo === undefined ? {} : { fifo };
  let sqs = await startTestSqs({ dataDir, port, dynamodbEndpoint, ...queues });
  const prefix = sqs.prefix;
  let running = true;
  const emu: Emulator = {
    sqs: { ...sqs, prefix },
    prefix,
    async stop() {
      if (!running) return;
      running = false;
      await sqs.stop();
    },
    async restart() {
      if (running) return;
      sqs = await startTestSqs({ dataDir, port, dynamodbEndpoint, ...queues });
      running = true;
      emu.sqs = { ...sqs, prefix };
    },
    async dispose() {
      await emu.stop();
      await store?.stop();
    },
  };
  return emu;
}

/** A service running as a child process on a fixed port, restartable. */
export interface ServiceProcess {
  /** `app` or `interface`. */
  name: string;
  /** http://127.0.0.1:<port> (the same across restarts). */
  url: string;
  /** The current process. */
  proc: RunningProcess;
  /** Starts so far (1 after the first start). */
  generation: number;
  /** Output lines of every generation, in order. */
  lines(): string[];
  /** Starts it (again) and waits until /readyz answers 200. */
  start(): Promise<void>;
  /** SIGKILL, waits for the exit. */
  kill9(): Promise<void>;
  /** SIGSTOP / SIGCONT: freezes the whole process (timers, heartbeat, sockets). */
  freeze(): void;
  thaw(): void;
  /** SIGTERM (graceful), waits for the exit. */
  stop(): Promise<void>;
}

/** Creates (does not start) a service process with a fixed port. */
export async function serviceProcess(name: 'app' | 'interface', baseEnv: Record<string, string>, envFor?: (url: string) => Record<string, string>): Promise<ServiceProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { ...baseEnv, ...envFor?.(url) };
  const script = name === 'app' ? 'services/app/main.ts' : 'services/interface/main.ts';
  const past: string[][] = [];
  const svc: ServiceProcess = {
    name,
    url,
    proc: undefined as unknown as RunningProcess,
    generation: 0,
    lines: () => [...past.flat(), ...(svc.proc ? svc.proc.lines : [])],
    async start() {
      if (svc.proc) past.push(svc.proc.lines);
      svc.proc = runNode(script, [], { ...env, PORT: String(port) });
      svc.generation++;
      await waitReady(url, svc.proc, READY_TIMEOUT_MS);
    },
    async kill9() {
      await svc.proc.stop('SIGKILL');
    },
    freeze() {
      svc.proc.child.kill('SIGSTOP');
    },
    thaw() {
      svc.proc.child.kill('SIGCONT');
    },
    async stop() {
      if (!svc.proc) return;
      svc.proc.child.kill('SIGCONT');
      await svc.proc.stop('SIGTERM');
    },
  };
  return svc;
}

/** Everything a scenario runs on: emulator, queues, keys, sink, token files and each service's env. */
export interface World {
  emulator: Emulator;
  queues: Record<LogicalQueue, EnsuredQueue>;
  keys: TestServiceKeyPair;
  sink: EmrSink;
  dir: string;
  env: ServiceEnv;
  /** Processes started through {@link World.service}, stopped by `close`. */
  services: ServiceProcess[];
  /** With `alerts`: the SNS topic both services notify, read back through an SQS subscription. */
  alerts: AlertWatch | undefined;
  /** Creates and starts a service process with the world's env plus `extra` (and what `envFor` its URL adds). */
  service(name: 'app' | 'interface', extra?: Record<string, string>, envFor?: (url: string) => Record<string, string>): Promise<ServiceProcess>;
  close(): Promise<void>;
}

/** Options for {@link startWorld}. */
export interface WorldOptions {
  /** Redrive count of the main queues (default 10: retries never dead-letter by accident). */
  maxReceiveCount?: number;
  /** Extra env for both services. */
  common?: Record<string, string>;
  /** Extra env for the interface service. */
  iface?: Record<string, string>;
  /** Extra env for the app service. */
  app?: Record<string, string>;
  /** FIFO queues whatever TEST_QUEUE_FIFO says (true or false); as it says when unset. */
  fifo?: boolean;
  /** Built-in alert notifications to a topic of the world's (evaluated every second); the values are extra ALERT_* env. */
  alerts?: Record<string, string>;
}

/** The notifications both services sent, as a subscriber reads them. */
export interface AlertWatch {
  /** Reads what arrived since the last call; returns everything read so far, in arrival order. */
  read(): Promise<ReadNotification[]>;
  /** Waits until a notification matching `alert`, `state` (and `service`) has arrived; returns everything read so far. */
  waitFor(alert: string, state: ReadNotification['state'], service?: string, timeoutMs?: number): Promise<ReadNotification[]>;
  /** `service state alert` for each notification read so far, e.g. `app started CareRelayQuarantineNotEmpty`. */
  lines(): string[];
}

function alertWatch(topic: AlertTopic, client: () => TestSqs['client']): AlertWatch {
  const all: ReadNotification[] = [];
  const watch: AlertWatch = {
    async read() {
      all.push(...(await topic.drain(client())));
      return all;
    },
    async waitFor(alert, state, service, timeoutMs = 60_000) {
      await waitFor(async () => (await watch.read()).some((n) => n.alert === alert && n.state === state && (service === undefined || n.service === service)), {
        timeoutMs,
        what: `${service ?? 'a service'} ${state} ${alert}`,
      });
      return all;
    },
    lines: () => all.map((n) => `${n.service} ${n.state} ${n.alert}`),
  };
  return watch;
}

/** Starts the emulator (persistent, fixed port), creates queues with a prefix of its own, the sink and the env. */
export async function startWorld(options: WorldOptions = {}): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'cr-faults-'));
  const emulator = await startEmulator(join(dir, 'sqs'), options.fifo);
  const queues = await ensureQueues(emulator.sqs.client, { prefix: emulator.prefix, fifo: emulator.sqs.fifo, maxReceiveCount: options.maxReceiveCount ?? 10, visibilityTimeoutSeconds: 5 });
  const keys = await makeServiceKeyPair();
  const sink = await startEmrSink();
  const topic = options.alerts ? await createAlertTopic(emulator.sqs) : undefined;
  const alertEnv = topic ? { ALERT_SNS_TOPIC_ARN: topic.arn, ALERT_INTERVAL_SECONDS: '1', ALERT_CLEAR_AFTER_SECONDS: '3', ...options.alerts } : {};
  const common = { LOG_LEVEL, CRYPTO_WORKERS: '1', ...alertEnv, ...options.common };
  const env = await writeServiceEnv(dir, emulator.sqs, keys, {
    iface: { ...common, ...sink.serviceEnv(), ...options.iface },
    app: { ...common, ...options.app },
  });
  const world: World = {
    emulator,
    queues,
    keys,
    sink,
    dir,
    env,
    services: [],
    alerts: undefined,
    async service(name, extra = {}, envFor) {
      const svc = await serviceProcess(name, { ...(name === 'app' ? env.app : env.iface), ...extra }, envFor);
      world.services.push(svc);
      await svc.start();
      return svc;
    },
    async close() {
      await Promise.allSettled(world.services.map(async (s) => {
        s.proc?.child.kill('SIGCONT');
        await s.proc?.stop('SIGKILL');
      }));
      await world.sink.stop().catch(() => undefined);
      await emulator.dispose().catch(() => undefined);
      topic?.close();
      await keys.cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
  if (topic) world.alerts = alertWatch(topic, () => world.emulator.sqs.client);
  return world;
}

/** Messages in a queue: visible, in flight and delayed ("in SQS" counts them all). */
export async function depth(sqs: TestSqs, url: string): Promise<{ visible: number; inFlight: number; delayed: number; total: number }> {
  const res = await sqs.client.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'] }),
  );
  const visible = Number(res.Attributes?.ApproximateNumberOfMessages ?? 0);
  const inFlight = Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  const delayed = Number(res.Attributes?.ApproximateNumberOfMessagesDelayed ?? 0);
  return { visible, inFlight, delayed, total: visible + inFlight + delayed };
}

/**
 * Drains a side queue (DLQ, quarantine) for inspection: receives until `count` messages or the
 * deadline, deleting what it read. Never holds what it read: on a FIFO queue a received message
 * locks its message group until deleted or visible again, so holding the first copy (as a long
 * visibility timeout would) keeps every later copy of that group out of reach.
 */
export async function drainQueue(sqs: TestSqs, url: string, count: number, timeoutMs = 30_000): Promise<Message[]> {
  const got = new Map<string, Message>();
  await waitFor(
    async () => {
      const res = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'] }));
      const messages = res.Messages ?? [];
      for (const m of messages) got.set(m.MessageId ?? '', m);
      if (messages.length > 0) {
        await sqs.client.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: messages.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })) }));
      }
      return got.size >= count;
    },
    { timeoutMs, intervalMs: 10, what: `${count} messages on ${url.slice(url.lastIndexOf('/') + 1)}` },
  );
  return [...got.values()];
}

/** How one submission ended from the client's side. */
export type SubmitOutcome = { kind: 'accepted'; id: string; attempts: number } | { kind: 'refused'; status: number; attempts: number } | { kind: 'gave-up'; attempts: number; last: string };

/** Options for {@link postWithRetry}. */
export interface PostOptions {
  /** Full URL (the service's URL + path); the port stays the same across restarts. */
  url: string;
  token: string;
  body: string;
  /** Client-side key: sent as Idempotency-Key on every attempt. */
  key: string;
  contentType?: string;
  /** Stop retrying after this long, ms. */
  deadlineMs?: number;
  /** Called with each answer status (0 for a network error). */
  onAttempt?: (status: number) => void;
  /** Picks the URL of each attempt (a fleet: any instance); default `url` every time. */
  pickUrl?: () => string;
  /** Chart updates: the record they change (`Ordering-Key`), kept in order at the EMR on FIFO queues. */
  orderingKey?: string;
}

/**
 * Posts like a careful partner: the same Idempotency-Key on every attempt, retrying on a
 * network error, 429 and 5xx with capped backoff; any other answer is final.
 */
export async function postWithRetry(o: PostOptions): Promise<SubmitOutcome> {
  const deadline = Date.now() + (o.deadlineMs ?? 90_000);
  let last = '';
  for (let attempt = 1; ; attempt++) {
    let status = 0;
    try {
      const res = await fetch(o.pickUrl?.() ?? o.url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${o.token}`,
          'content-type': o.contentType ?? 'application/fhir+json',
          'idempotency-key': o.key,
          ...(o.orderingKey === undefined ? {} : { 'ordering-key': o.orderingKey }),
        },
        body: o.body,
        signal: AbortSignal.timeout(15_000),
      });
      status = res.status;
      const text = await res.text();
      if (status === 202) return { kind: 'accepted', id: (JSON.parse(text) as { id: string }).id, attempts: attempt };
      last = `HTTP ${status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    o.onAttempt?.(status);
    if (status !== 0 && status !== 429 && status < 500) return { kind: 'refused', status, attempts: attempt };
    if (Date.now() > deadline) return { kind: 'gave-up', attempts: attempt, last };
    await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** Math.min(attempt, 5))));
  }
}

/** Runs `task(i)` for i in [0, n) with at most `concurrency` at once. */
export async function pool(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, concurrency) }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

/** A synthetic FHIR resource (no PHI) carrying the client-side key. */
export function fhir(key: string, resourceType = 'Observation'): string {
  return JSON.stringify({ resourceType, id: key, status: 'final', code: { text: 'synthetic fault-suite record' } });
}

/** Seals a chart update as the app would (app keys, to the interface) with `sentAt` from `now`, and sends it with the wire attributes. */
export async function sendSealedChartUpdate(world: World, queueUrl: string, key: string, options: { now?: Date; sealNow?: Date } = {}): Promise<string> {
  const envelope = buildEnvelope(
    { kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/fhir+json', body: fhir(key) },
    options.now ?? new Date(),
  );
  const sealed = await seal(envelope, world.keys.app.own, world.keys.app.peers, options.sealNow ? { now: options.sealNow } : {});
  await world.emulator.sqs.client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: sealed.body, MessageAttributes: sealed.attributes, ...fifoSendIds(world.emulator.sqs, 'app-to-interface') }));
  return envelope.id;
}

