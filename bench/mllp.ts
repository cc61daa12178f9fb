// (7) HL7 v2 over MLLP next to HTTP, in one interface service on the emulator:
// intake (partner → ACK/202 once on SQS) over MLLP and over HTTP, and EMR delivery
// (SQS → EMR → ACK/2xx) over MLLP and over HTTP, messages/s each.
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEnvelope } from '../services/core/envelope/envelope.ts';
import { seal } from '../services/core/envelope/seal.ts';
import { hashToken } from '../services/core/http/auth.ts';
import { createLogger } from '../services/core/log/logger.ts';
import { ensureQueues } from '../services/core/transport/queues.ts';
import { startEmrSink } from '../services/devtools/emrSink.ts';
import { startMllpSink } from '../services/devtools/mllpSink.ts';
import { loadInterfaceConfig } from '../services/interface/config.ts';
import { startInterfaceService } from '../services/interface/service.ts';
import { nullDestination, round, timed, type BenchKeys, type Throughput } from './lib.ts';
import { commonEnv, type BenchSqs } from './stack.ts';

/** MLLP and HTTP figures of one run. */
export interface MllpResult {
  /** Intake over MLLP (one message in flight per connection); the interface's state-table calls per message. */
  intakeMllp: Throughput & { connections: number; stateCallsPerMessage: number };
  /** Intake over HTTP, the same number of clients (no Idempotency-Key). */
  intakeHttp: Throughput & { connections: number; stateCallsPerMessage: number };
  /** EMR delivery over MLLP: messages/s until the last ACK (one persistent connection). */
  deliveryMllp: { messages: number; seconds: number; perSecond: number };
  /** EMR delivery over HTTP. */
  deliveryHttp: { messages: number; seconds: number; perSecond: number };
}

/** Connections (MLLP) and clients (HTTP) of the intake loops. */
export const MLLP_CONNECTIONS = 8;

const hl7 = (id: string): string => `MSH|^~\\&|LIS|BENCH|CARE|RELAY|20260101120000||ORU^R01^ORU_R01|${id}|P|2.5.1\rPID|1||${id}^^^BENCH^MR||Synthetic^Bench\rOBX|1|TX|note||${'x'.repeat(3500)}\r`;

/** One MLLP client connection: send, wait for the framed ACK (from the spec; no product code). */
async function mllpClient(port: number): Promise<{ send(text: string): Promise<string>; close(): void }> {
  const socket: Socket = connect({ host: '127.0.0.1', port });
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let buffer = '';
  let waiter: ((ack: string) => void) | undefined;
  socket.on('data', (c: Buffer) => {
    buffer += c.toString('latin1');
    const end = buffer.indexOf('\x1c\r');
    if (end >= 0 && waiter) {
      const ack = buffer.slice(1, end);
      buffer = buffer.slice(end + 2);
      waiter(ack);
    }
  });
  return {
    send: (text) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('(7) MLLP intake: no ACK within 120 s')), 120_000);
        waiter = (ack) => {
          clearTimeout(timer);
          resolve(ack);
        };
        socket.write(Buffer.concat([Buffer.from([0x0b]), Buffer.from(text, 'latin1'), Buffer.from([0x1c, 0x0d])]));
      }),
    close: () => socket.destroy(),
  };
}

/** Runs (7): intake and delivery, MLLP next to HTTP, `count` messages each (bounded by `durationMs` for intake). */
export async function benchMllp(sqs: BenchSqs, keys: BenchKeys, prefix: string, budget: { durationMs: number; maxOps: number; deliveries: number }): Promise<MllpResult> {
  const queues = await ensureQueues(sqs.client, { prefix, maxReceiveCount: 5, visibilityTimeoutSeconds: 60 });
  await sqs.ensureTables(prefix);
  const dir = await mkdtemp(join(tmpdir(), 'crb-mllp-'));
  const token = randomBytes(18).toString('base64url');
  await writeFile(join(dir, 'partners.json'), JSON.stringify({ tokens: [{ name: 'bench-partner', sha256: hashToken(token), rateLimitPerMinute: 100_000, allowCidrs: ['127.0.0.1/32'], mllp: { sendingFacilities: ['BENCH'] } }] }));
  // The service's SQS client uses the default credential chain: give it the emulator's.
  process.env.AWS_ACCESS_KEY_ID ??= 'bench';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
  const httpSink = await startEmrSink();
  const mllpSink = await startMllpSink();
  const iface = await startInterfaceService(
    loadInterfaceConfig({
      ...commonEnv(sqs, prefix),
      KEYS_DIR: keys.interface.dir,
      KEY_PASSPHRASE: keys.passphrase,
      AUDIT_FILE: join(dir, 'interface-audit.jsonl'),
      HMAC_KEY: randomBytes(32).toString('hex'),
      PARTNERS_FILE: join(dir, 'partners.json'),
      EMR_URL: `${httpSink.url}/deliveries`,
      EMR_MLLP_URL: `mllp://127.0.0.1:${mllpSink.port}`,
      EMR_MLLP_PLAIN: 'true',
      EMR_CONCURRENCY: '32',
      MLLP_INTAKE_PORT: '0',
    }),
    { logger: createLogger({ service: 'interface', level: 'info', destination: nullDestination() }) },
  );
  try {
    const loop = { durationMs: budget.durationMs, maxOps: budget.maxOps, concurrency: MLLP_CONNECTIONS };
    const clients = await Promise.all(Array.from({ length: MLLP_CONNECTIONS }, () => mllpClient(iface.mllp!.listener.port)));
    const run = randomBytes(3).toString('hex');
    console.log('      intake over MLLP');
    // One message in flight per connection: each operation borrows an idle connection.
    const idle = [...clients];
    const stateCalls = (): number => iface.runtime.state.calls;
    let callsFrom = stateCalls();
    const intakeMllp = await timed(loop, async (i) => {
      const client = idle.pop()!;
      try {
        const ack = await client.send(hl7(`m${run}-${i}`));
        if (!ack.includes('MSA|AA|')) throw new Error('MLLP intake was not acknowledged AA');
      } finally {
        idle.push(client);
      }
    });
    const mllpCalls = stateCalls() - callsFrom;
    for (const c of clients) c.close();
    const port = (iface.server.server.address() as AddressInfo).port;
    const agent = new Agent({ keepAlive: true, maxSockets: MLLP_CONNECTIONS });
    console.log('      intake over HTTP');
    callsFrom = stateCalls();
    const intakeHttp = await timed(loop, (i) => new Promise<void>((resolve, reject) => {
      const body = hl7(`h${run}-${i}`);
      const req = request({ host: '127.0.0.1', port, path: '/v1/submissions', method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/hl7-v2', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 202 ? resolve() : reject(new Error(`HTTP intake answered ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(body);
    }));
    const httpCalls = stateCalls() - callsFrom;
    agent.destroy();

    // Delivery: seal first, then enqueue all and time until the EMR has every one.
    const deliver = async (kind: 'mllp' | 'http'): Promise<{ messages: number; seconds: number; perSecond: number }> => {
      const n = budget.deliveries;
      const ids: string[] = [];
      const bodies: Array<{ body: string; attributes: Record<string, { DataType: string; StringValue: string }> }> = [];
      for (let i = 0; i < n; i++) {
        const id = `${kind}${run}-${i}`;
        const envelope = buildEnvelope({ kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: kind === 'mllp' ? 'application/hl7-v2' : 'application/fhir+json', body: kind === 'mllp' ? hl7(id) : JSON.stringify({ resourceType: 'Observation', id, note: 'x'.repeat(3500) }) });
        ids.push(kind === 'mllp' ? id : envelope.id);
        bodies.push(await seal(envelope, keys.app.keys.own, keys.app.keys.peers));
      }
      const t0 = performance.now();
      await Promise.all(bodies.map((b) => sqs.client.send(new SendMessageCommand({ QueueUrl: queues['app-to-interface'].url, MessageBody: b.body, MessageAttributes: b.attributes }))));
      const has = (id: string): boolean => (kind === 'mllp' ? mllpSink.deliveries.has(id) : httpSink.deliveries.has(id));
      const deadline = Date.now() + 120_000;
      while (!ids.every(has)) {
        if (Date.now() > deadline) throw new Error(`(7) ${kind} delivery: ${ids.filter(has).length}/${n} delivered within 120 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const seconds = (performance.now() - t0) / 1000;
      return { messages: n, seconds: round(seconds, 2), perSecond: round(n / seconds, 1) };
    };
    console.log('      delivery over MLLP, then HTTP');
    const deliveryMllp = await deliver('mllp');
    const deliveryHttp = await deliver('http');
    const perMessage = (calls: number, ops: number): number => round(calls / Math.max(1, ops), 2);
    return {
      intakeMllp: { ...intakeMllp, connections: MLLP_CONNECTIONS, stateCallsPerMessage: perMessage(mllpCalls, intakeMllp.ops) },
      intakeHttp: { ...intakeHttp, connections: MLLP_CONNECTIONS, stateCallsPerMessage: perMessage(httpCalls, intakeHttp.ops) },
      deliveryMllp,
      deliveryHttp,
    };
  } finally {
    await iface.stop();
    await Promise.all([httpSink.stop(), mllpSink.stop()]);
    await rm(dir, { recursive: true, force: true });
  }
}
