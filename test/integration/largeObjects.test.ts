import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../services/core/audit/chain.ts';
import { MAX_PAYLOAD_BYTES } from '../../services/core/relay/outbound.ts';
import { LARGE_DOC_PHI, largeDocument, streamRequest } from '../helpers/largeDocs.ts';
import { useLargeStack } from '../helpers/largeStack.ts';
import { readTrail } from '../helpers/trail.ts';
import { waitFor } from '../helpers/wait.ts';

const MiB = 1024 * 1024;

const large = useLargeStack();

/** Submits a generated document of `bytes` bytes (Content-Length, or chunked), with an Idempotency-Key if given. */
async function submitLarge(bytes: number, options: { chunked?: boolean; seed?: number; key?: string } = {}) {
  const doc = largeDocument(bytes, options.seed);
  const res = await streamRequest(`${large.ifaceUrl}/v1/submissions`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${large.stack.tokens.partner}`,
      'content-type': 'application/cda+xml',
      ...(options.chunked ? {} : { 'content-length': bytes }),
      ...(options.key ? { 'idempotency-key': options.key } : {}),
    },
    body: doc.stream,
  });
  return { res, sha256: await doc.sha256 };
}

/** The interface's audit lines about envelope `id`, in the trail's order. */
async function ifaceAudit(id: string): Promise<AuditEntry[]> {
  return (await readTrail(large.stack.env.iface.AUDIT_FILE!)).filter((l) => l.resourceId === id);
}

function readRecord(id: string) {
  return streamRequest(`${large.appUrl}/v1/inbox/${id}`, { method: 'GET', headers: { authorization: `Bearer ${large.stack.tokens.reader}` } });
}

function ack(id: string) {
  return large.stack.app.server.inject({ method: 'POST', url: `/v1/inbox/${id}/ack`, headers: { authorization: `Bearer ${large.stack.tokens.reader}` } });
}

describe('large documents through S3', () => {
  it.each([
    { size: 1, chunked: false },
    { size: 10, chunked: true },
    { size: 100, chunked: false },
  ])('a $size MiB document (chunked: $chunked) round trips with the same SHA-256, and its object is deleted on ack', async ({ size, chunked }) => {
    const { res, sha256 } = await submitLarge(size * MiB, { chunked, seed: size });
    expect(res.status, res.text).toBe(202);
    const id = JSON.parse(res.text).id as string;
    const summary = await waitFor(() => large.stack.app.inbox.list(1000).find((r) => r.id === id), { timeoutMs: 120_000, what: 'the large record in the inbox' });
    expect(summary).toMatchObject({ contentType: 'application/xml', bytes: size * MiB });
    expect(await large.bucket.keys()).toContain(`${large.sqs.prefix}interface-to-app/${id}.pgp`);

    const read = await readRecord(id);
    expect(read.status).toBe(200);
    expect(read.aborted).toBe(false);
    expect(read.headers['content-type']).toBe('application/xml');
    expect(read.headers['cache-control']).toBe('no-store');
    expect(read.bytes).toBe(size * MiB);
    expect(read.sha256).toBe(sha256);

    expect((await ack(id)).statusCode).toBe(200);
    await waitFor(async () => !(await large.bucket.keys()).some((k) => k.includes(id)), { timeoutMs: 30_000, what: 'the object deleted after the ack' });
  }, 300_000);

  // A body the intake reads whole but whose sealed form would not fit one message (JSON escaping doubles each quote)
  // goes through S3 like a streamed one; its `submission.accepted` line travels with the pointer's `message.relayed`.
  it('a body read whole that would not fit one message once sealed goes through S3, audited once as accepted', async () => {
    const data = '"'.repeat(350_000);
    const body = JSON.stringify({ resourceType: 'Binary', contentType: 'text/plain', data });
    // Under the intake's limit for a body read whole (a larger one is streamed to S3 as it arrives).
    expect(body.length).toBeLessThan(MAX_PAYLOAD_BYTES);
    const res = await fetch(`${large.ifaceUrl}/v1/submissions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${large.stack.tokens.partner}`, 'content-type': 'application/fhir+json' },
      body,
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await waitFor(() => large.stack.app.inbox.get(id), { timeoutMs: 60_000, what: 'the record' });
    expect(await large.bucket.keys()).toContain(`${large.sqs.prefix}interface-to-app/${id}.pgp`);
    expect((await ifaceAudit(id)).map((l) => l.action)).toEqual(['message.relayed', 'submission.accepted']);
    expect((await ack(id)).statusCode).toBe(200);
  }, 120_000);

  it('a large document sent again with the same Idempotency-Key answers the same id and is relayed once (the retry writes its lines again, marked copy)', async () => {
    const key = `large-${Date.now()}`;
    const first = await submitLarge(MiB, { seed: 11, key });
    expect(first.res.status, first.res.text).toBe(202);
    const id = JSON.parse(first.res.text).id as string;
    const again = await submitLarge(MiB, { seed: 11, key });
    expect(again.res.status, again.res.text).toBe(202);
    expect(JSON.parse(again.res.text).id).toBe(id);
    await waitFor(() => large.stack.app.inbox.get(id), { timeoutMs: 60_000, what: 'the record' });
    expect((await large.bucket.keys()).filter((k) => k.includes(id))).toHaveLength(1);
    const lines = (await ifaceAudit(id)).filter((l) => l.action === 'message.relayed' || l.action === 'submission.accepted');
    const copy = (l: (typeof lines)[number]): boolean => (l.details as { copy?: boolean } | undefined)?.copy === true;
    expect(lines.filter((l) => !copy(l)).map((l) => l.action).sort()).toEqual(['message.relayed', 'submission.accepted']);
    expect(lines.filter(copy).map((l) => [l.action, l.details])).toEqual([
      ['message.relayed', { queue: 'interface-to-app', kind: 'care.submission', copy: true }],
      ['submission.accepted', { contentType: expect.any(String), object: true, copy: true }],
    ]);
    expect((await ack(id)).statusCode).toBe(200);
  }, 120_000);

  it('planted PHI in a large document reaches no log or audit line', async () => {
    const { res } = await submitLarge(2 * MiB, { seed: 7 });
    expect(res.status).toBe(202);
    const id = JSON.parse(res.text).id as string;
    await waitFor(() => large.stack.app.inbox.get(id), { timeoutMs: 60_000, what: 'the record' });
    const read = await readRecord(id);
    expect(read.status).toBe(200);
    expect((await ack(id)).statusCode).toBe(200);
    const audits = (await readFile(large.stack.env.iface.AUDIT_FILE!, 'utf8')) + (await readFile(large.stack.env.app.AUDIT_FILE!, 'utf8'));
    const logs = [...large.stack.logs.iface.lines, ...large.stack.logs.app.lines].join('\n');
    expect(logs).toContain(id);
    expect(logs).not.toContain('Quackenbush');
    expect(audits).not.toContain('Quackenbush');
    expect(LARGE_DOC_PHI).toContain('Quackenbush');
  }, 120_000);
});
