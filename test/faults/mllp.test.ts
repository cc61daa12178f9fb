// MLLP scenarios: the EMR closes the socket mid-message, never ACKs, answers AE in bursts,
// answers slowly; a partner disconnects before its ACK. The interface runs as a real process;
// the EMR is the demo sink's independent MLLP receiver (it recognises a resent MSH-10, as
// interface engines do). Every HL7 chart update is delivered, none twice; every partner
// message is on SQS once.
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope } from '../../services/core/envelope/envelope.ts';
import { seal } from '../../services/core/envelope/seal.ts';
import { hashToken } from '../../services/core/http/auth.ts';
import { startMllpSink, type MllpSink, type MllpSinkMode } from '../../services/devtools/mllpSink.ts';
import { freePort } from '../helpers/processes.ts';
import { fifoSendIds } from '../helpers/sqs.ts';
import { waitFor } from '../helpers/wait.ts';
import { depth, report, scaled, startWorld, type ServiceProcess, type World } from './harness.ts';

const ACK_TIMEOUT_MS = 1000;
let world: World;
let iface: ServiceProcess;
let emr: MllpSink;
let mllpPort: number;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-faults-mllp-'));
  const partners = join(dir, 'partners.json');
  await writeFile(partners, JSON.stringify({ tokens: [{ name: 'north-lab', sha256: hashToken('unused'), allowCidrs: ['127.0.0.1/32', '::1'], rateLimitPerMinute: 100_000, mllp: { sendingFacilities: ['NORTH'] } }] }));
  emr = await startMllpSink();
  mllpPort = await freePort();
  world = await startWorld({
    iface: {
      PARTNERS_FILE: partners,
      EMR_MLLP_URL: `mllp://127.0.0.1:${emr.port}`,
      EMR_MLLP_PLAIN: 'true',
      EMR_MLLP_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
      EMR_MLLP_MAX_ATTEMPTS: '100',
      MLLP_INTAKE_PORT: String(mllpPort),
      LOG_LEVEL: 'info',
    },
  });
  iface = await world.service('interface');
});

afterAll(async () => {
  await world?.close();
  await emr?.stop();
  await rm(dir, { recursive: true, force: true });
});

const hl7 = (controlId: string): string => `MSH|^~\\&|CARE|APP|EMR|HOSP|20260101120000||ORU^R01^ORU_R01|${controlId}|P|2.5.1\rOBX|1|TX|note||synthetic\r`;

async function chartUpdates(prefix: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const controlId = `${prefix}-${i}`;
    const envelope = buildEnvelope({ kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/hl7-v2', body: hl7(controlId) });
    const sealed = await seal(envelope, world.keys.app.own, world.keys.app.peers);
    await world.emulator.sqs.client.send(new SendMessageCommand({ QueueUrl: world.queues['app-to-interface'].url, MessageBody: sealed.body, MessageAttributes: sealed.attributes, ...fifoSendIds(world.emulator.sqs, 'app-to-interface') }));
    ids.push(controlId);
  }
  return ids;
}

describe('MLLP faults', () => {
  const totals = { sent: 0, delivered: 0, extra: 0, lost: 0 };
  const perCase: Record<string, string> = {};

  afterAll(() => {
    report('mllp-emr', { sent: totals.sent, delivered: totals.delivered, duplicatesSuppressed: totals.extra, lost: totals.lost, extra: perCase });
  });

  async function scenario(name: string, mode: MllpSinkMode, n: number, reason: RegExp): Promise<void> {
    emr.setMode(mode);
    const ids = await chartUpdates(name, n);
    await waitFor(() => iface.lines().filter((l) => l.includes('EMR delivery failed') && reason.test(l)).length >= 1, { timeoutMs: 60_000, what: `${name}: a failed attempt` });
    emr.setMode({ kind: 'AA' });
    await waitFor(async () => ids.every((id) => emr.deliveries.has(id)) && (await depth(world.emulator.sqs, world.queues['app-to-interface'].url)).total === 0, {
      timeoutMs: 90_000,
      intervalMs: 250,
      what: `${name}: every chart update delivered`,
    });
    const got = ids.filter((id) => emr.deliveries.has(id));
    totals.sent += n;
    totals.delivered += got.length;
    totals.extra += got.reduce((sum, id) => sum + emr.deliveries.get(id)!.attempts - 1, 0);
    totals.lost += n - got.length;
    perCase[name] = `${got.length}/${n}`;
    expect(got).toEqual(ids);
    // Nothing dead-lettered, nothing left.
    expect((await depth(world.emulator.sqs, world.queues['app-to-interface'].dlqUrl)).total).toBe(0);
  }

  it('EMR closes the socket mid-message: retried, delivered once', async () => {
    await scenario('close', { kind: 'close', count: scaled(4, 2) }, scaled(6, 3), /CR_MLLP_CLOSED/);
  });

  it('EMR never ACKs: timed out, retried on a new connection, delivered once', async () => {
    await scenario('silent', { kind: 'none', count: scaled(3, 2) }, scaled(4, 2), /CR_MLLP_ACK_TIMEOUT/);
  });

  it('EMR answers AE in bursts: retried with backoff, delivered once', async () => {
    await scenario('ae-burst', { kind: 'AE', count: scaled(8, 4) }, scaled(6, 3), /CR_MLLP_ACK_AE/);
  });

  it('EMR answers slower than the ACK timeout: the resend is recognised by MSH-10, never delivered twice', async () => {
    await scenario('slow', { kind: 'slow', delayMs: ACK_TIMEOUT_MS * 2, count: scaled(3, 2) }, scaled(4, 2), /CR_MLLP_ACK_TIMEOUT/);
  });

  it('partner disconnects before the ACK: the resend gets the same envelope, each message is on SQS once', async () => {
    const n = scaled(6, 3);
    const queue = world.queues['interface-to-app'].url;
    const before = (await depth(world.emulator.sqs, queue)).total;
    const frameOf = (s: string): Buffer => Buffer.concat([Buffer.from([0x0b]), Buffer.from(s, 'utf8'), Buffer.from([0x1c, 0x0d])]);
    const partnerMsg = (i: number): string => `MSH|^~\\&|LIS|NORTH|CARE|RELAY|20260101120000||ORU^R01|gone-${i}|P|2.5.1\rPID|1||${i}\r`;
    for (let i = 0; i < n; i++) {
      const s = connect({ host: '127.0.0.1', port: mllpPort });
      await new Promise((resolve) => s.once('connect', resolve));
      s.end(frameOf(partnerMsg(i)));
    }
    const acks: string[] = [];
    for (let i = 0; i < n; i++) {
      acks.push(
        await new Promise<string>((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port: mllpPort });
          let got = '';
          s.on('data', (c: Buffer) => {
            got += c.toString('utf8');
            if (got.includes('\x1c')) {
              s.end();
              resolve(got);
            }
          });
          s.on('error', reject);
          s.write(frameOf(partnerMsg(i)));
        }),
      );
    }
    expect(acks.every((a) => /\rMSA\|AA\|gone-\d+\|[0-9a-f-]{36}/.test(a))).toBe(true);
    const onQueue = await waitFor(async () => {
      const d = (await depth(world.emulator.sqs, queue)).total - before;
      return d >= n ? d : undefined;
    }, { what: 'partner messages on SQS' });
    report('mllp-partner-disconnect', { sent: n, delivered: onQueue, duplicatesSuppressed: n, lost: n - onQueue });
    expect(onQueue).toBe(n);
  });
});
