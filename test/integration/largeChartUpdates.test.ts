// Large chart updates, app → S3 + SQS → interface → EMR: streamed both ways over real sockets,
// delivered to a real HTTP EMR endpoint byte for byte, their objects deleted once delivered,
// and their status readable by the writer; a large submission's status by the partner.
import { readFile } from 'node:fs/promises';
import { SendMessageCommand, type MessageAttributeValue } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { largeDocument, streamRequest } from '../helpers/largeDocs.ts';
import { useLargeStack } from '../helpers/largeStack.ts';
import { waitFor } from '../helpers/wait.ts';

const MiB = 1024 * 1024;

const large = useLargeStack();

/** Posts a generated chart update of `bytes` bytes to the app (Content-Length, or chunked). */
async function postLarge(bytes: number, options: { chunked?: boolean; seed?: number } = {}) {
  const doc = largeDocument(bytes, options.seed);
  const res = await streamRequest(`${large.appUrl}/v1/chart-updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${large.stack.tokens.writer}`, 'content-type': 'application/cda+xml', ...(options.chunked ? {} : { 'content-length': bytes }) },
    body: doc.stream,
  });
  return { res, sha256: await doc.sha256 };
}

async function chartUpdateStatus(id: string) {
  const res = await large.stack.app.server.inject({ method: 'GET', url: `/v1/chart-updates/${id}`, headers: { authorization: `Bearer ${large.stack.tokens.writer}` } });
  return { code: res.statusCode, body: res.json() as { status: string; reasonCode?: string; timeline: Array<{ status: string; emrStatus?: number }> } };
}

describe('large chart updates through S3 to the EMR', () => {
  it.each([
    { size: 1, chunked: false },
    { size: 10, chunked: true },
    { size: 100, chunked: false },
  ])('a $size MiB chart update (chunked: $chunked) reaches the EMR with the same SHA-256; delivered, and its object deleted', async ({ size, chunked }) => {
    const { res, sha256 } = await postLarge(size * MiB, { chunked, seed: 100 + size });
    expect(res.status, res.text).toBe(202);
    const id = JSON.parse(res.text).id as string;
    // Relayed through S3, not as one message.
    expect(large.stack.logs.app.entries().some((e) => e.envelopeId === id && e.msg === 'large object relayed')).toBe(true);

    const delivery = await waitFor(() => large.stack.sink.deliveries.get(id), { timeoutMs: 240_000, what: 'the chart update at the EMR' });
    expect(delivery.bytes).toBe(size * MiB);
    expect(delivery.sha256).toBe(sha256);
    expect(delivery.contentType).toBe('application/xml');
    expect(delivery.attempts).toBe(1);

    const status = await waitFor(async () => ((await chartUpdateStatus(id)).body.status === 'delivered' ? chartUpdateStatus(id) : undefined), { timeoutMs: 60_000, what: 'the delivered status' });
    expect(status.code).toBe(200);
    expect(status.body.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'delivered']);
    expect(status.body.timeline.find((s) => s.status === 'delivered')?.emrStatus).toBe(200);
    await waitFor(async () => !(await large.bucket.keys()).some((k) => k.includes(id)), { timeoutMs: 30_000, what: 'the object deleted after the delivery' });
  }, 400_000);

  it('a copy of a delivered large update arriving after its object was deleted is a duplicate: not quarantined, not delivered again', async () => {
    // The app's sends to app-to-interface, captured as they leave, so the very message can be sent again.
    const sent: Array<{ MessageBody?: string; MessageAttributes?: Record<string, MessageAttributeValue> }> = [];
    large.stack.app.runtime.sqs.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Entries?: typeof sent } & (typeof sent)[number];
        for (const entry of input.Entries ?? [input]) if (entry.MessageBody) sent.push({ MessageBody: entry.MessageBody, MessageAttributes: entry.MessageAttributes ?? {} });
        return next(args);
      },
      { step: 'initialize', name: 'captureForCopy' },
    );
    const { res } = await postLarge(2 * MiB, { seed: 9 });
    expect(res.status).toBe(202);
    const id = JSON.parse(res.text).id as string;
    await waitFor(() => large.stack.sink.deliveries.get(id), { timeoutMs: 60_000, what: 'the chart update at the EMR' });
    await waitFor(async () => !(await large.bucket.keys()).some((k) => k.includes(id)), { timeoutMs: 30_000, what: 'the object deleted after the delivery' });
    const original = sent.find((m) => m.MessageAttributes?.['cr-envelope-id']?.StringValue === id)!;
    expect(original).toBeDefined();
    // SQS delivers it again (or the sender retried): the same signed envelope, its object gone.
    await large.sqs.client.send(new SendMessageCommand({ QueueUrl: large.stack.queues['app-to-interface'].url, MessageBody: original.MessageBody, MessageAttributes: original.MessageAttributes }));
    await waitFor(() => large.stack.logs.iface.entries().some((e) => e.envelopeId === id && e.msg === 'duplicate envelope id; acknowledged without processing'), { timeoutMs: 60_000, what: 'the copy settled as a duplicate' });
    const lines = large.stack.logs.iface.entries().filter((e) => e.envelopeId === id);
    expect(lines.some((e) => e.msg === 'large object already deleted: its envelope was applied; duplicate')).toBe(true);
    expect(lines.some((e) => e.msg === 'large object missing' || e.msg === 'quarantined')).toBe(false);
    expect(large.stack.sink.deliveries.get(id)!.attempts).toBe(1);
    expect((await chartUpdateStatus(id)).body.status).toBe('delivered');
  }, 240_000);

  it('an EMR that refuses a large update: dead-lettered, the writer sees failed with the EMR status, and the object stays for a redrive', async () => {
    large.stack.sink.setMode({ kind: 'fail', status: 422, count: 1 });
    const { res } = await postLarge(2 * MiB, { seed: 5 });
    expect(res.status).toBe(202);
    const id = JSON.parse(res.text).id as string;
    const status = await waitFor(async () => ((await chartUpdateStatus(id)).body.status === 'failed' ? chartUpdateStatus(id) : undefined), { timeoutMs: 60_000, what: 'the failed status' });
    expect(status.body.reasonCode).toBe('CR_EMR_HTTP_422');
    expect(large.stack.sink.deliveries.has(id)).toBe(false);
    expect(await large.bucket.keys()).toContain(`${large.sqs.prefix}app-to-interface/${id}.pgp`);
  }, 120_000);

  it('a large submission: GET /v1/submissions/{id} shows held, then acknowledged once the application acked it', async () => {
    const doc = largeDocument(3 * MiB, 77);
    const res = await streamRequest(`${large.ifaceUrl}/v1/submissions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${large.stack.tokens.partner}`, 'content-type': 'application/cda+xml', 'content-length': 3 * MiB },
      body: doc.stream,
    });
    expect(res.status, res.text).toBe(202);
    const id = JSON.parse(res.text).id as string;
    const submission = async () => {
      const r = await large.stack.iface.server.inject({ method: 'GET', url: `/v1/submissions/${id}`, headers: { authorization: `Bearer ${large.stack.tokens.partner}` } });
      return r.json() as { status: string; timeline: Array<{ status: string }> };
    };
    await waitFor(async () => ((await submission()).status === 'held' ? true : undefined), { timeoutMs: 60_000, what: 'the held status' });
    const read = await streamRequest(`${large.appUrl}/v1/inbox/${id}`, { method: 'GET', headers: { authorization: `Bearer ${large.stack.tokens.reader}` } });
    expect(read.sha256).toBe(await doc.sha256);
    const ack = await large.stack.app.server.inject({ method: 'POST', url: `/v1/inbox/${id}/ack`, headers: { authorization: `Bearer ${large.stack.tokens.reader}` } });
    expect(ack.statusCode).toBe(200);
    const done = await waitFor(async () => {
      const s = await submission();
      return s.status === 'acknowledged' ? s : undefined;
    }, { timeoutMs: 60_000, what: 'the acknowledged status' });
    expect(done.timeline.map((s) => s.status)).toEqual(['accepted', 'queued', 'held', 'acknowledged']);
  }, 120_000);

  it('planted PHI in the large chart updates and submission reached no log or audit line', async () => {
    const audits = (await readFile(large.stack.env.iface.AUDIT_FILE!, 'utf8')) + (await readFile(large.stack.env.app.AUDIT_FILE!, 'utf8'));
    const logs = [...large.stack.logs.iface.lines, ...large.stack.logs.app.lines].join('\n');
    expect(logs).toContain('large object relayed');
    expect(audits).toContain('message.delivered');
    expect(logs).not.toContain('Quackenbush');
    expect(audits).not.toContain('Quackenbush');
  });
});
