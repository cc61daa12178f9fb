// EMR delivery over MLLP against the demo sink's receiver (an independent MLLP
// implementation), over real sockets: the ACK decides, nothing is delivered without a
// matching positive ACK, one persistent connection keeps the order.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../../services/core/audit/types.ts';
import { buildEnvelope, type Envelope } from '../../../services/core/envelope/envelope.ts';
import { silentLogger } from '../../../services/core/log/logger.ts';
import type { ReceivedMessage } from '../../../services/core/transport/consumerTypes.ts';
import { startMllpSink, type MllpSink } from '../../../services/devtools/mllpSink.ts';
import { emrDeliveryEffect } from '../../../services/interface/delivery/handler.ts';
import { createMllpClient, type MllpClient, type MllpClientOptions } from '../../../services/interface/delivery/mllpClient.ts';
import { memoryDeliveryLedger } from '../../helpers/ledgers.ts';
import { makeSelfSignedCert } from '../../helpers/tls.ts';

const signal = new AbortController().signal;

function chartUpdate(controlId: string, extra = ''): Envelope {
  const hl7 = `MSH|^~\\&|CARE|APP|EMR|HOSP|20260101120000||ORU^R01^ORU_R01|${controlId}|P|2.5.1\rPID|1||42^^^HOSP^MR||Doe^Jane${extra}\r`;
  return buildEnvelope({ kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/hl7-v2', body: hl7 });
}

function received(receiveCount: number): ReceivedMessage {
  return { messageId: 'm', body: '', attributes: {}, envelopeId: undefined, receiveCount, sentAt: undefined, queue: 'app-to-interface' } as ReceivedMessage;
}

let sink: MllpSink;
let client: MllpClient | undefined;
const clients = (o: Partial<MllpClientOptions> = {}): MllpClient => {
  client = createMllpClient({ host: '127.0.0.1', port: sink.port, connectTimeoutMs: 2000, ackTimeoutMs: 2000, maxAttempts: 3, ...o });
  return client;
};

beforeAll(async () => {
  sink = await startMllpSink();
});
afterEach(() => {
  client?.close();
  sink.setMode({ kind: 'AA' });
});
afterAll(async () => {
  await sink.stop();
});

describe('EMR delivery over MLLP', () => {
  it('AA is delivered and carries the ACK code; deliveries share one persistent connection in order', async () => {
    const c = clients();
    const before = sink.connections();
    const ids = ['ord-1', 'ord-2', 'ord-3', 'ord-4', 'ord-5'];
    const outcomes = await Promise.all(ids.map((id) => c.deliver(chartUpdate(id), signal)));
    expect(outcomes).toEqual(ids.map(() => ({ kind: 'delivered', ackCode: 'AA' })));
    expect(sink.connections() - before).toBe(1);
    expect(sink.requests.slice(-5).map((r) => r.controlId)).toEqual(ids);
    expect(sink.deliveries.get('ord-1')!.body.toString('utf8')).toBe(Buffer.from(chartUpdate('ord-1').body).toString('utf8'));
  });

  it('AE is retried, and dead-lettered with the reason on the last attempt', async () => {
    const c = clients();
    sink.setMode({ kind: 'AE', count: 10 });
    const outcome = await c.deliver(chartUpdate('ae-1'), signal);
    expect(outcome).toEqual({ kind: 'transient', reason: 'CR_MLLP_ACK_AE', ackCode: 'AE', deadLetterOnAttempt: 3 });
    expect(sink.deliveries.has('ae-1')).toBe(false);

    const audit: AuditEvent[] = [];
    // The attempt is the delivery ledger's count (receives that found another instance delivering do not count).
    const ledger = memoryDeliveryLedger();
    const effect = emrDeliveryEffect({ emr: c, audit: { record: async (e) => void audit.push(e) }, logger: silentLogger, ledger });
    expect(await effect(chartUpdate('ae-2'), received(1), signal)).toMatchObject({ status: 'retry', reason: 'CR_MLLP_ACK_AE' });
    const ae3 = chartUpdate('ae-3');
    expect(await effect(ae3, received(1), signal)).toMatchObject({ status: 'retry', reason: 'CR_MLLP_ACK_AE' });
    expect(await effect(ae3, received(2), signal)).toMatchObject({ status: 'retry', reason: 'CR_MLLP_ACK_AE' });
    expect(await effect(ae3, received(3), signal)).toEqual({ status: 'dead-letter', reason: 'CR_MLLP_ACK_AE' });
    expect(audit.map((e) => [e.action, e.details?.reason])).toEqual([['message.dead-lettered', 'CR_MLLP_ACK_AE']]);
  });

  it('AR and CR are dead-lettered at once with the reason', async () => {
    const c = clients();
    sink.setMode({ kind: 'AR', count: 1 });
    expect(await c.deliver(chartUpdate('ar-1'), signal)).toEqual({ kind: 'rejected', reason: 'CR_MLLP_ACK_AR', ackCode: 'AR' });
    sink.setMode({ kind: 'CR', count: 1 });
    const effect = emrDeliveryEffect({ emr: c, audit: { record: async () => {} }, logger: silentLogger, ledger: memoryDeliveryLedger() });
    expect(await effect(chartUpdate('cr-1'), received(1), signal)).toEqual({ status: 'dead-letter', reason: 'CR_MLLP_ACK_CR' });
  });

  it('an ACK for another MSH-10 is not a delivery: retried on a fresh connection', async () => {
    const c = clients();
    sink.setMode({ kind: 'mismatch', count: 1 });
    const before = sink.connections();
    expect(await c.deliver(chartUpdate('mm-1'), signal)).toEqual({ kind: 'transient', reason: 'CR_MLLP_ACK_MISMATCH' });
    expect(await c.deliver(chartUpdate('mm-1'), signal)).toEqual({ kind: 'delivered', ackCode: 'AA' });
    expect(sink.connections() - before).toBe(2);
  });

  it('no ACK within the timeout, and a socket closed mid-message, are retried, never delivered (a dropped socket closing late does not fail the next attempt)', async () => {
    const c = clients({ ackTimeoutMs: 300 });
    sink.setMode({ kind: 'none', count: 1 });
    expect(await c.deliver(chartUpdate('silent-1'), signal)).toEqual({ kind: 'transient', reason: 'CR_MLLP_ACK_TIMEOUT' });
    sink.setMode({ kind: 'close', count: 1 });
    expect(await c.deliver(chartUpdate('closed-1'), signal)).toEqual({ kind: 'transient', reason: 'CR_MLLP_CLOSED' });
    expect(sink.deliveries.has('silent-1') || sink.deliveries.has('closed-1')).toBe(false);
    expect(await c.deliver(chartUpdate('closed-1'), signal)).toEqual({ kind: 'delivered', ackCode: 'AA' });
  });

  it('a late ACK arriving after the timeout is never taken for the next message', async () => {
    const c = clients({ ackTimeoutMs: 200 });
    sink.setMode({ kind: 'slow', delayMs: 600, count: 1 });
    expect(await c.deliver(chartUpdate('late-1'), signal)).toEqual({ kind: 'transient', reason: 'CR_MLLP_ACK_TIMEOUT' });
    // The next message goes on a new connection; the late AA for late-1 cannot answer it.
    expect(await c.deliver(chartUpdate('late-2'), signal)).toEqual({ kind: 'delivered', ackCode: 'AA' });
  });

  it('an unreachable EMR is retried, reconnecting with backoff', async () => {
    const down = await startMllpSink();
    const port = down.port;
    await down.stop();
    const c = clients({ port });
    expect(await c.deliver(chartUpdate('down-1'), signal)).toEqual({ kind: 'transient', reason: 'CR_MLLP_UNREACHABLE_ECONNREFUSED' });
    // During the backoff the attempt fails at once (the SQS message is retried later, not held).
    expect(await c.deliver(chartUpdate('down-1'), signal)).toMatchObject({ kind: 'transient', reason: 'CR_MLLP_UNREACHABLE_ECONNREFUSED' });
  });

  it('a chart update that is not HL7 v2 is dead-lettered at once', async () => {
    const c = clients();
    const bad = buildEnvelope({ kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/hl7-v2', body: 'PID|1\r' });
    expect(await c.deliver(bad, signal)).toEqual({ kind: 'rejected', reason: 'CR_MLLP_MESSAGE_MALFORMED' });
  });
});

describe('EMR delivery over MLLP with TLS', () => {
  let dir: string;
  let tlsSink: MllpSink;
  let server: { cert: Buffer; keyFile: string };
  let clientCert: { cert: Buffer; key: Buffer };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mllp-tls-'));
    const s = await makeSelfSignedCert(dir, 'emr');
    const c = await makeSelfSignedCert(dir, 'relay');
    const { readFile } = await import('node:fs/promises');
    server = { cert: s.cert, keyFile: s.keyFile };
    clientCert = { cert: c.cert, key: await readFile(c.keyFile) };
    tlsSink = await startMllpSink({ tls: { cert: s.cert, key: await readFile(s.keyFile), ca: c.cert } });
  });
  afterAll(async () => {
    await tlsSink?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('delivers with the pinned server CA and a client certificate', async () => {
    const c = clients({ port: tlsSink.port, tls: { ca: server.cert, cert: clientCert.cert, key: clientCert.key, servername: 'localhost' } });
    expect(await c.deliver(chartUpdate('tls-1'), signal)).toEqual({ kind: 'delivered', ackCode: 'AA' });
    expect(tlsSink.deliveries.has('tls-1')).toBe(true);
  });

  it('refuses an EMR whose certificate does not chain to the pinned CA', async () => {
    const c = clients({ port: tlsSink.port, tls: { ca: clientCert.cert, cert: clientCert.cert, key: clientCert.key, servername: 'localhost' } });
    const outcome = await c.deliver(chartUpdate('tls-2'), signal);
    expect(outcome).toMatchObject({ kind: 'transient' });
    expect((outcome as { reason: string }).reason).toMatch(/^CR_MLLP_UNREACHABLE_/);
    expect(tlsSink.deliveries.has('tls-2')).toBe(false);
  });

  it('without a client certificate the EMR refuses the connection: nothing is delivered', async () => {
    const c = clients({ port: tlsSink.port, tls: { ca: server.cert, servername: 'localhost' } });
    const outcome = await c.deliver(chartUpdate('tls-3'), signal);
    expect(outcome.kind).toBe('transient');
    expect(tlsSink.deliveries.has('tls-3')).toBe(false);
  });
});
