// Which EMR answers are retried and which are dead-lettered, against a real local HTTP
// server: the client's outcome and what the delivery effect then tells the consumer.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope, type Envelope } from '../../../services/core/envelope/envelope.ts';
import type { AuditEvent } from '../../../services/core/audit/types.ts';
import type { ReceivedMessage } from '../../../services/core/transport/consumerTypes.ts';
import { createEmrClient, type EmrOutcome } from '../../../services/interface/delivery/emrClient.ts';
import { emrDeliveryEffect } from '../../../services/interface/delivery/handler.ts';
import { memoryDeliveryLedger } from '../../helpers/ledgers.ts';
import { captureLogger } from '../../helpers/logs.ts';

type Answer = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let url: string;
let answer: Answer = (_req, res) => res.writeHead(200).end();
const seen: Array<{ headers: IncomingMessage['headers']; body: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      answer(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/deliveries`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

function chartUpdate(): Envelope {
  return buildEnvelope({ kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/hl7-v2', body: 'MSH|^~\\&|APP|CARE|EMR|HOSP|202601011200||ORU^R01|1|P|2.5\r' });
}

async function deliverAgainst(status: number, headers: Record<string, string> = {}, target = url): Promise<EmrOutcome> {
  answer = (_req, res) => res.writeHead(status, headers).end('emr says no: patient Jane Roe');
  return createEmrClient({ url: target, timeoutMs: 2_000 }).deliver(chartUpdate(), new AbortController().signal);
}

/** What the consumer is told to do with the message for that outcome. */
async function consumerAction(outcome: EmrOutcome): Promise<string> {
  const audit: AuditEvent[] = [];
  const effect = emrDeliveryEffect({ emr: { deliver: async () => outcome }, audit: { record: async (e) => void audit.push(e) }, logger: captureLogger('interface').logger, ledger: memoryDeliveryLedger() });
  const result = await effect(chartUpdate(), { receiveCount: 1 } as ReceivedMessage, new AbortController().signal);
  return result.status;
}

describe('EMR client: what is delivered, retried or dead-lettered', () => {
  it('2xx is delivered (message deleted): 200, 201, 202, 204', async () => {
    for (const status of [200, 201, 202, 204]) {
      const outcome = await deliverAgainst(status);
      expect(outcome, String(status)).toEqual({ kind: 'delivered', status });
      expect(await consumerAction(outcome)).toBe('done');
    }
  });

  it('posts the payload with the envelope id as Idempotency-Key, the media type and the bearer token', async () => {
    seen.length = 0;
    answer = (_req, res) => res.writeHead(200).end();
    const envelope = chartUpdate();
    await createEmrClient({ url, timeoutMs: 2_000, authToken: 'emr-secret' }).deliver(envelope, new AbortController().signal);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['idempotency-key']).toBe(envelope.id);
    expect(seen[0]!.headers['content-type']).toBe('application/hl7-v2');
    expect(seen[0]!.headers.authorization).toBe('Bearer emr-secret');
    expect(seen[0]!.body).toBe(envelope.body);
  });

  it('408, 429 and 5xx are transient (retried), with Retry-After honoured in seconds and capped at 12 h', async () => {
    for (const status of [408, 429, 500, 502, 503, 504]) {
      const outcome = await deliverAgainst(status);
      expect(outcome, String(status)).toEqual({ kind: 'transient', reason: `CR_EMR_HTTP_${status}` });
      expect(await consumerAction(outcome)).toBe('retry');
    }
    expect(await deliverAgainst(503, { 'retry-after': '7' })).toEqual({ kind: 'transient', reason: 'CR_EMR_HTTP_503', retryAfterSeconds: 7 });
    expect(await deliverAgainst(429, { 'retry-after': '999999' })).toEqual({ kind: 'transient', reason: 'CR_EMR_HTTP_429', retryAfterSeconds: 43_200 });
  });

  it('every other 4xx is a permanent rejection (dead-lettered at once): 400, 401, 403, 404, 409, 413, 415, 422', async () => {
    for (const status of [400, 401, 403, 404, 409, 413, 415, 422]) {
      const outcome = await deliverAgainst(status);
      expect(outcome, String(status)).toEqual({ kind: 'rejected', reason: `CR_EMR_HTTP_${status}` });
      expect(await consumerAction(outcome)).toBe('dead-letter');
    }
  });

  it('3xx is never followed: a redirect counts as unreachable (retried), a 3xx without Location is rejected', async () => {
    for (const status of [301, 302, 307, 308]) {
      const outcome = await deliverAgainst(status, { location: 'http://127.0.0.1:9/elsewhere' });
      expect(outcome.kind, String(status)).toBe('transient');
      expect((outcome as { reason: string }).reason).toMatch(/^CR_EMR_UNREACHABLE_/);
      expect(await consumerAction(outcome)).toBe('retry');
    }
    const bare = await deliverAgainst(300);
    expect(bare).toEqual({ kind: 'rejected', reason: 'CR_EMR_HTTP_300' });
    expect(await consumerAction(bare)).toBe('dead-letter');
  });

  it('a timeout is transient: CR_EMR_TIMEOUT, retried', async () => {
    answer = (_req, res) => void setTimeout(() => res.writeHead(200).end(), 1_500);
    const outcome = await createEmrClient({ url, timeoutMs: 200 }).deliver(chartUpdate(), new AbortController().signal);
    expect(outcome).toEqual({ kind: 'transient', reason: 'CR_EMR_TIMEOUT' });
    expect(await consumerAction(outcome)).toBe('retry');
  });

  it('connection refused is transient (retried) and names the cause without the URL', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const outcome = await createEmrClient({ url: `http://127.0.0.1:${port}/deliveries`, timeoutMs: 2_000 }).deliver(chartUpdate(), new AbortController().signal);
    expect(outcome).toEqual({ kind: 'transient', reason: 'CR_EMR_UNREACHABLE_ECONNREFUSED' });
    expect(await consumerAction(outcome)).toBe('retry');
  });

  it("never carries the EMR's answer body into the outcome (it may hold PHI)", async () => {
    for (const status of [400, 500]) expect(JSON.stringify(await deliverAgainst(status))).not.toContain('Jane Roe');
  });
});
