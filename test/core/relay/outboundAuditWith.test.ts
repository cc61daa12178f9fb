// The intake's `submission.accepted` line travels with the send (`auditWith`): recorded in the same turn as
// the send's own `message.relayed`, it goes to the trail in the same write, and the send resolves only once
// both lines are on disk (issue 17: one audit write fewer per submission).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openAuditLog } from '../../../services/core/audit/auditLog.ts';
import type { AuditEvent, AuditSink } from '../../../services/core/audit/types.ts';
import type { RelayCrypto } from '../../../services/core/relay/crypto.ts';
import { createOutbound, type OutboundPayload } from '../../../services/core/relay/outbound.ts';
import { recordingProducer } from '../../helpers/outboundFakes.ts';
import { spyOnFileHandleWrites } from '../../helpers/fileWrites.ts';

const id = '0190c0de-0000-7000-8000-000000000002';
const accepted: AuditEvent = { action: 'submission.accepted', actor: 'acme', resourceType: 'envelope', resourceId: id, outcome: 'success', sourceIp: '10.0.0.9', details: { contentType: 'application/fhir+json', bytes: 26 } };
const payload: OutboundPayload = { id, kind: 'care.submission', contentType: 'application/fhir+json', bodyEncoding: 'utf8', body: Buffer.from('{"resourceType":"Patient"}'), partner: 'acme', actor: 'acme', sourceIp: '10.0.0.9', auditWith: accepted };

const crypto: RelayCrypto = {
  seal: async (envelope) => ({ body: 'armored', attributes: { 'cr-version': '1', 'cr-envelope-id': envelope.id, 'cr-signer': 'AB' } as never }),
  open: () => Promise.reject(new Error('not used')),
  close: async () => {},
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-outbound-audit-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('outbound: the caller’s audit line with message.relayed', () => {
  it('writes message.relayed and the caller’s line in one write, in that order, before the send resolves', async () => {
    const file = join(dir, 'audit.jsonl');
    const audit = await openAuditLog({ file, service: 'interface' });
    const writes = await spyOnFileHandleWrites(dir);
    const producer = recordingProducer();
    try {
      const outbound = createOutbound({ crypto, producer, from: 'interface', to: 'app', queue: 'interface-to-app', audit });
      expect(await outbound.send(payload)).toBe(id);
      expect(writes).toHaveBeenCalledTimes(1);
    } finally {
      writes.mockRestore();
    }
    // Resolved means on disk: both lines are in the file now.
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEvent);
    expect(lines.map((l) => [l.action, l.resourceId])).toEqual([
      ['message.relayed', id],
      ['submission.accepted', id],
    ]);
    expect(lines[1]).toMatchObject(accepted);
    expect(producer.sent).toEqual([id]);
    await audit.close();
  });

  it('fails the send when the caller’s line cannot be recorded, though SQS took the message', async () => {
    const recorded: string[] = [];
    const audit: AuditSink = {
      record: async (event) => {
        recorded.push(event.action);
        if (event.action === 'submission.accepted') throw new Error('audit trail full');
      },
    };
    const producer = recordingProducer();
    const outbound = createOutbound({ crypto, producer, from: 'interface', to: 'app', queue: 'interface-to-app', audit });
    await expect(outbound.send(payload)).rejects.toThrow('audit trail full');
    expect(recorded).toEqual(['message.relayed', 'submission.accepted']);
    expect(producer.sent).toEqual([id]);
  });

  it('without one, records message.relayed alone', async () => {
    const recorded: string[] = [];
    const audit: AuditSink = { record: async (event) => void recorded.push(event.action) };
    const { auditWith: _none, ...plain } = payload;
    const outbound = createOutbound({ crypto, producer: recordingProducer(), from: 'interface', to: 'app', queue: 'interface-to-app', audit });
    expect(await outbound.send(plain)).toBe(id);
    expect(recorded).toEqual(['message.relayed']);
  });
});
