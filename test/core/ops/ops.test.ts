import { randomUUID } from 'node:crypto';
import { ReceiveMessageCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listHeld, purgeHeld, queueStatus, redriveHeld, showHeld, type OpsDeps, type OpsProgress } from '../../../services/core/ops/index.ts';
import { createConsumer } from '../../../services/core/transport/consumer.ts';
import { stringAttribute, type SqsAttributes } from '../../../services/core/transport/attributes.ts';
import { ensureQueues, type EnsuredQueue } from '../../../services/core/transport/queues.ts';
import { startTestSqs, type TestSqs } from '../../helpers/sqs.ts';
import { deleteQueues, depth, memoryAudit, waitFor } from '../transport/helpers.ts';

const PHI = 'Patient Jane Roe, DOB 1961-04-12, MRN 99-1234';
const SIGNER = 'A1B2C3D4E5F60718293A4B5C6D7E8F9012345678';

let sqs: TestSqs;
let n = 0;
beforeAll(async () => {
  sqs = await startTestSqs();
});
afterAll(async () => {
  await deleteQueues(sqs.client, sqs.prefix).catch(() => undefined);
  await sqs.stop();
});

async function fresh(fifo = false): Promise<{ q: EnsuredQueue; deps: OpsDeps }> {
  const { 'interface-to-app': q } = await ensureQueues(sqs.client, { prefix: `${sqs.prefix}o${n++}-`, queues: ['interface-to-app'], fifo, maxReceiveCount: 2 });
  return { q, deps: { client: sqs.client, queues: { 'interface-to-app': q } } };
}

function attrs(id: string, extra: SqsAttributes = {}): SqsAttributes {
  return { 'cr-version': stringAttribute('1'), 'cr-envelope-id': stringAttribute(id), 'cr-signer': stringAttribute(SIGNER), ...extra };
}

const body = (id: string): string => `-----BEGIN PGP MESSAGE-----\n${PHI} ${id}\n-----END PGP MESSAGE-----`;

async function send(url: string, id: string, extra: SqsAttributes = {}, fifo?: { group: string; dedup: string }): Promise<void> {
  await sqs.client.send(
    new SendMessageCommand({ QueueUrl: url, MessageBody: body(id), MessageAttributes: attrs(id, extra), ...(fifo ? { MessageGroupId: fifo.group, MessageDeduplicationId: fifo.dedup } : {}) }),
  );
}

/** Sends each id to the main queue and lets a real consumer set it aside with the given result. */
async function setAside(q: EnsuredQueue, ids: string[], result: (id: string) => { status: 'quarantine' | 'dead-letter'; reason: string }): Promise<void> {
  for (const id of ids) await send(q.url, id, {}, q.fifo ? { group: id, dedup: id } : undefined);
  // Short polls: a long poll aborted by stop() would still take a message sent later (SQS and the emulator finish it server-side).
  const consumer = createConsumer({ client: sqs.client, queue: q, service: 'app', waitTimeSeconds: 0, handler: async (m) => result(m.envelopeId!) });
  consumer.start();
  try {
    await waitFor(async () => {
      const [d, qu] = await Promise.all([depth(sqs.client, q.dlqUrl), depth(sqs.client, q.quarantineUrl)]);
      return d.visible + qu.visible >= ids.length;
    }, 15_000, 'messages set aside');
  } finally {
    await consumer.stop({ deadlineMs: 1000 });
  }
}

async function receiveAll(url: string, count: number): Promise<Message[]> {
  const got: Message[] = [];
  await waitFor(async () => {
    const res = await sqs.client.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'] }),
    );
    got.push(...(res.Messages ?? []));
    return got.length >= count;
  }, 15_000, `${count} message(s)`);
  return got;
}

describe('listHeld / showHeld', () => {
  it('lists quarantined messages with their metadata and no body, and leaves them in the queue', async () => {
    const { q, deps } = await fresh();
    const ids = [randomUUID(), randomUUID()];
    await setAside(q, ids, () => ({ status: 'quarantine', reason: 'CR_ENVELOPE_SIGNATURE_INVALID' }));
    const held = await listHeld(deps, { queue: 'interface-to-app', role: 'quarantine' });
    expect(held.map((m) => m.envelopeId).sort()).toEqual([...ids].sort());
    for (const m of held) {
      expect(m).toMatchObject({ queue: 'interface-to-app', role: 'quarantine', reason: 'CR_ENVELOPE_SIGNATURE_INVALID', signer: SIGNER, receiveCount: 0 });
      expect(Date.parse(m.sentAt!)).toBeGreaterThan(0);
      expect(Date.parse(m.lastReceiveAt!)).toBeGreaterThan(0);
      expect(Object.keys(m)).not.toContain('body');
    }
    expect(JSON.stringify(held)).not.toContain('Jane Roe');
    expect(JSON.stringify(held)).not.toContain('PGP MESSAGE');
    // Released at the end: all visible again at once, and counted as one more receive next time.
    expect(await depth(sqs.client, q.quarantineUrl)).toEqual({ visible: 2, inFlight: 0 });
    const again = await showHeld(deps, { queue: 'interface-to-app', role: 'quarantine', id: ids[0]!.toUpperCase() });
    expect(again).toMatchObject({ envelopeId: ids[0], receiveCount: 1 });
    expect(JSON.stringify(again)).not.toContain('Jane Roe');
  });

  it('a DLQ message dead-lettered by the consumer shows its reason and when it was set aside; one moved by SQS shows max-receives', async () => {
    const { q, deps } = await fresh();
    const id = randomUUID();
    await setAside(q, [id], () => ({ status: 'dead-letter', reason: 'CR_EMR_HTTP_400' }));
    const moved = randomUUID();
    await send(q.dlqUrl, moved);
    const held = await listHeld(deps, { queue: 'interface-to-app', role: 'dlq' });
    expect(held.find((m) => m.envelopeId === id)).toMatchObject({ reason: 'CR_EMR_HTTP_400' });
    expect(Date.parse(held.find((m) => m.envelopeId === id)!.lastReceiveAt!)).toBeGreaterThan(0);
    expect(held.find((m) => m.envelopeId === moved)).toMatchObject({ reason: 'max-receives', lastReceiveAt: null });
  });

  it('shows only checked values from the clear attributes (hostile attributes are not echoed)', async () => {
    const { q, deps } = await fresh();
    await sqs.client.send(
      new SendMessageCommand({
        QueueUrl: q.quarantineUrl,
        MessageBody: body('x'),
        MessageAttributes: { 'cr-envelope-id': stringAttribute(PHI), 'cr-signer': stringAttribute(PHI), 'cr-reason': stringAttribute(PHI), 'cr-quarantined-at': stringAttribute(PHI) },
      }),
    );
    const [m] = await listHeld(deps, { queue: 'interface-to-app', role: 'quarantine' });
    expect(m).toMatchObject({ envelopeId: null, signer: null, reason: 'CR_REASON_INVALID', lastReceiveAt: null });
    expect(JSON.stringify(m)).not.toContain('Jane');
  });

  it('refuses an unknown queue, a bad limit and a missing id with CR_OPS_* codes', async () => {
    const { deps } = await fresh();
    await expect(listHeld(deps, { queue: 'nope', role: 'dlq' })).rejects.toMatchObject({ code: 'CR_OPS_INVALID_OPTION' });
    await expect(listHeld(deps, { queue: 'interface-to-app', role: 'dlq', limit: 0 })).rejects.toMatchObject({ code: 'CR_OPS_INVALID_OPTION' });
    await expect(showHeld(deps, { queue: 'interface-to-app', role: 'dlq', id: randomUUID() })).rejects.toMatchObject({ code: 'CR_OPS_MESSAGE_NOT_FOUND' });
  });
});

describe('queueStatus', () => {
  it('gives depths, counts by reason and the oldest held message age', async () => {
    const { q, deps } = await fresh();
    await setAside(q, [randomUUID(), randomUUID(), randomUUID()], (id) => ({ status: 'quarantine', reason: id.endsWith('0') ? 'CR_ENVELOPE_TOO_OLD' : 'CR_ENVELOPE_SIGNATURE_INVALID' }));
    await send(q.dlqUrl, randomUUID());
    await send(q.url, randomUUID());
    const start = Date.now();
    const [s] = await queueStatus(deps, { now: () => start + 60_000 });
    expect(s).toMatchObject({ queue: 'interface-to-app', name: q.name, fifo: false, partial: false, main: { visible: 1, inFlight: 0, oldestAgeSeconds: null } });
    expect(s!.dlq).toMatchObject({ visible: 1, byReason: { 'max-receives': 1 } });
    expect(Object.values(s!.quarantine.byReason).reduce((a, b) => a + b, 0)).toBe(3);
    expect(s!.quarantine.visible).toBe(3);
    expect(s!.quarantine.oldestAgeSeconds).toBeGreaterThanOrEqual(59);
  });
});

describe('redriveHeld / purgeHeld', () => {
  it('redrives only the selected ids, byte for byte with the wire attributes, audited per message, with progress', async () => {
    const { q, deps } = await fresh();
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    await setAside(q, ids, () => ({ status: 'dead-letter', reason: 'CR_EMR_HTTP_503' }));
    const audit = memoryAudit();
    const progress: OpsProgress[] = [];
    const result = await redriveHeld(deps, { queue: 'interface-to-app', role: 'dlq', ids: [ids[0]!, ids[2]!], audit, actor: 'cli:test', onProgress: (p) => progress.push(p) });
    expect(result.items.map((i) => i.outcome)).toEqual(['done', 'done']);
    expect(result.items.map((i) => i.envelopeId).sort()).toEqual([ids[0], ids[2]].sort());
    expect(progress[0]).toMatchObject({ scanned: 0, total: 3 });
    expect(progress.at(-1)).toMatchObject({ scanned: 3, matched: 2, done: 2, failed: 0 });
    expect(audit.events).toHaveLength(2);
    for (const e of audit.events) {
      expect(e).toMatchObject({ action: 'message.redriven', actor: 'cli:test', resourceType: 'envelope', outcome: 'success', details: { queue: 'interface-to-app', from: 'dlq', reason: 'CR_EMR_HTTP_503' } });
    }
    expect(JSON.stringify(audit.events)).not.toContain('Jane Roe');
    const back = await receiveAll(q.url, 2);
    for (const m of back) {
      const id = m.MessageAttributes!['cr-envelope-id']!.StringValue!;
      expect(m.Body).toBe(body(id));
      expect(Object.keys(m.MessageAttributes!).sort()).toEqual(['cr-envelope-id', 'cr-signer', 'cr-version']);
    }
    // The one not selected stays, visible again.
    expect(await depth(sqs.client, q.dlqUrl)).toEqual({ visible: 1, inFlight: 0 });
  });

  it('dry run changes nothing and audits nothing', async () => {
    const { q, deps } = await fresh();
    await setAside(q, [randomUUID(), randomUUID()], () => ({ status: 'quarantine', reason: 'CR_ENVELOPE_SIGNER_NOT_PINNED' }));
    const audit = memoryAudit();
    for (const act of [redriveHeld, purgeHeld]) {
      const r = await act(deps, { queue: 'interface-to-app', role: 'quarantine', dryRun: true, audit, actor: 'cli:test' });
      expect(r.items.map((i) => i.outcome)).toEqual(['would', 'would']);
    }
    expect(audit.events).toEqual([]);
    expect(await depth(sqs.client, q.quarantineUrl)).toEqual({ visible: 2, inFlight: 0 });
    expect(await depth(sqs.client, q.url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('purges by reason only, audited per message', async () => {
    const { q, deps } = await fresh();
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    await setAside(q, ids, (id) => ({ status: 'quarantine', reason: id === ids[1] ? 'CR_ENVELOPE_TOO_OLD' : 'CR_ENVELOPE_DIGEST_MISMATCH' }));
    const audit = memoryAudit();
    const r = await purgeHeld(deps, { queue: 'interface-to-app', role: 'quarantine', reasons: ['CR_ENVELOPE_DIGEST_MISMATCH'], audit, actor: 'admin' });
    expect(r.items.map((i) => i.envelopeId).sort()).toEqual([ids[0], ids[2]].sort());
    expect(audit.events.map((e) => [e.action, e.resourceId, e.outcome])).toEqual(r.items.map((i) => ['message.purged', i.envelopeId, 'success']));
    const left = await listHeld(deps, { queue: 'interface-to-app', role: 'quarantine' });
    expect(left.map((m) => m.envelopeId)).toEqual([ids[1]]);
  });

  it('refuses free text as an id or a reason', async () => {
    const { deps } = await fresh();
    const audit = memoryAudit();
    await expect(purgeHeld(deps, { queue: 'interface-to-app', role: 'dlq', ids: [PHI], audit, actor: 'a' })).rejects.toMatchObject({ code: 'CR_OPS_INVALID_OPTION' });
    await expect(purgeHeld(deps, { queue: 'interface-to-app', role: 'dlq', reasons: [PHI], audit, actor: 'a' })).rejects.toMatchObject({ code: 'CR_OPS_INVALID_OPTION' });
  });

  it('FIFO: a redriven message keeps its group and arrives although its original deduplication id is still in the window', async () => {
    const { q, deps } = await fresh(true);
    const id = randomUUID();
    await setAside(q, [id], () => ({ status: 'dead-letter', reason: 'CR_EMR_HTTP_503' }));
    const r = await redriveHeld(deps, { queue: 'interface-to-app', role: 'dlq', audit: memoryAudit(), actor: 'a' });
    expect(r.items).toHaveLength(1);
    const [m] = await receiveAll(q.url, 1);
    expect(m!.Attributes!.MessageGroupId).toBe(id);
    expect(m!.Body).toBe(body(id));
  });
});
