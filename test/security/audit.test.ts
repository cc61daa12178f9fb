import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringAttribute } from '../../services/core/transport/attributes.ts';
import { waitFor } from '../helpers/wait.ts';
import { auditFiles, bearer, readAudit, readStackAudit, startSmsStack, submit, type AuditLine, type SmsStack } from './helpers.ts';

const FHIR = JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'audit scenario' } });
const HL7 = 'MSH|^~\\&|APP|CARE|EMR|HOSP|202601011200||ORU^R01|13|P|2.5\r';
const main = resolve(import.meta.dirname, '../../services/cli/main.ts');

let world: SmsStack;
let trails: { iface: AuditLine[]; app: AuditLine[] };
const ids: { submission?: string; chart?: string; quarantined?: string; sid?: string } = {};

function careRelay(...args: string[]) {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  world = await startSmsStack();
  const { stack } = world;
  const { app, iface, tokens, sink, sqs, queues } = stack;

  // An authentication failure, and an accepted submission read and acknowledged in the inbox.
  await iface.server.inject({ method: 'POST', url: '/v1/submissions', headers: { 'content-type': 'application/fhir+json' }, payload: FHIR, remoteAddress: '192.0.2.90' });
  const accepted = await submit(stack, FHIR, {}, '192.0.2.91');
  ids.submission = accepted.json<{ id: string }>().id;
  await waitFor(() => app.inbox.get(ids.submission!), { what: 'record in inbox' });
  await app.server.inject({ method: 'GET', url: `/v1/inbox/${ids.submission}`, headers: bearer(tokens.reader), remoteAddress: '192.0.2.92' });
  await app.server.inject({ method: 'POST', url: `/v1/inbox/${ids.submission}/ack`, headers: bearer(tokens.reader), remoteAddress: '192.0.2.92' });

  // A chart update delivered to the EMR.
  const chart = await app.server.inject({ method: 'POST', url: '/v1/chart-updates', headers: { ...bearer(tokens.writer), 'content-type': 'application/hl7-v2' }, payload: HL7, remoteAddress: '192.0.2.93' });
  ids.chart = chart.json<{ id: string }>().id;
  await waitFor(() => sink.deliveries.get(ids.chart!), { what: 'EMR delivery' });

  // A message on the queue that is not OpenPGP: quarantined.
  ids.quarantined = randomUUID();
  await sqs.client.send(
    new SendMessageCommand({
      QueueUrl: queues['interface-to-app'].url,
      MessageBody: 'this is not an OpenPGP message',
      MessageAttributes: { 'cr-version': stringAttribute('1'), 'cr-envelope-id': stringAttribute(ids.quarantined), 'cr-signer': stringAttribute('0'.repeat(40)) },
    }),
  );

  // An SMS sent, its status callback, its redaction.
  const sms = await app.server.inject({ method: 'POST', url: '/v1/messages', headers: bearer(tokens.messenger), payload: { to: '+15551230003', body: 'Your lab results are in' }, remoteAddress: '192.0.2.94' });
  expect(sms.statusCode).toBe(202);
  ids.sid = sms.json<{ sid: string }>().sid;

  // Emergency mode switched on and off by an admin.
  for (const active of [true, false]) {
    await app.server.inject({ method: 'PUT', url: '/v1/admin/emergency', headers: bearer(tokens.admin), payload: { active }, remoteAddress: '192.0.2.95' });
  }

  const files = auditFiles(stack);
  await waitFor(async () => (await readAudit(files.app)).some((l) => l.action === 'message.quarantined' && l.resourceId === ids.quarantined), { what: 'quarantine audited' });
  await waitFor(async () => (await readAudit(files.app)).some((l) => l.action === 'sms.redacted'), { what: 'redaction audited' });
  await waitFor(async () => (await readAudit(files.iface)).some((l) => l.action === 'message.delivered' && l.resourceId === ids.chart), { what: 'delivery audited' });
  trails = await readStackAudit(stack);
});
afterAll(async () => {
  await world?.stop();
});

describe('audit trail written by the running services', () => {
  it('records every event DESIGN lists, each with timestamp, actor, action, resource type and outcome', () => {
    const all = [...trails.iface, ...trails.app];
    const find = (service: 'iface' | 'app', match: Partial<AuditLine>) => {
      const found = trails[service].find((l) => Object.entries(match).every(([k, v]) => (l as unknown as Record<string, unknown>)[k] === v));
      expect(found, `${service}: ${JSON.stringify(match)}`).toBeDefined();
      return found!;
    };
    // Authentication, success and failure, with the source IP.
    find('iface', { action: 'auth.failure', actor: 'anonymous', sourceIp: '192.0.2.90', outcome: 'failure' });
    find('iface', { action: 'auth.success', actor: 'acme-health', sourceIp: '192.0.2.91', outcome: 'success' });
    // Submission accepted and relayed.
    find('iface', { action: 'submission.accepted', resourceType: 'envelope', resourceId: ids.submission, actor: 'acme-health', sourceIp: '192.0.2.91' });
    find('iface', { action: 'message.relayed', resourceId: ids.submission });
    find('app', { action: 'message.received', resourceId: ids.submission, actor: 'app' });
    // Inbox read (PHI access) and acknowledged.
    find('app', { action: 'inbox.read', resourceType: 'inbox-record', resourceId: ids.submission, actor: 'reader', sourceIp: '192.0.2.92' });
    find('app', { action: 'inbox.acked', resourceId: ids.submission, actor: 'reader' });
    // Chart update relayed by the app and delivered by the interface.
    find('app', { action: 'message.relayed', resourceId: ids.chart, actor: 'writer', sourceIp: '192.0.2.93' });
    find('iface', { action: 'message.delivered', resourceId: ids.chart, actor: 'interface', outcome: 'success' });
    // Quarantined, with the reason code.
    expect(find('app', { action: 'message.quarantined', resourceId: ids.quarantined }).details).toMatchObject({ reason: 'CR_ENVELOPE_NOT_OPENPGP', queue: 'interface-to-app' });
    // SMS sent and redacted, the sid only as an HMAC.
    const sent = find('app', { action: 'sms.sent', actor: 'messenger', sourceIp: '192.0.2.94', outcome: 'success' });
    const redacted = find('app', { action: 'sms.redacted', outcome: 'success' });
    expect(redacted.resourceId).toBe(sent.resourceId);
    expect(JSON.stringify(all)).not.toContain(ids.sid);
    // Keys loaded, by each service.
    expect(find('iface', { action: 'key.loaded', resourceType: 'key' }).resourceId).toBe(world.stack.keys.interface.fingerprint);
    expect(find('app', { action: 'key.loaded', resourceType: 'key' }).resourceId).toBe(world.stack.keys.app.fingerprint);
    // Emergency mode changed, by whom and from where.
    const changes = trails.app.filter((l) => l.action === 'emergency.changed');
    expect(changes.map((l) => [l.actor, l.sourceIp, l.details?.active])).toEqual([
      ['admin', '192.0.2.95', true],
      ['admin', '192.0.2.95', false],
    ]);

    for (const line of all) {
      expect(new Date(line.ts).toISOString()).toBe(line.ts);
      for (const field of ['actor', 'action', 'resourceType', 'service'] as const) expect(typeof line[field]).toBe('string');
      expect(['success', 'failure']).toContain(line.outcome);
      expect(line.hash).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(trails.iface.every((l) => l.service === 'interface')).toBe(true);
    expect(trails.app.every((l) => l.service === 'app')).toBe(true);
  });

  it('`care-relay audit verify` passes on both trails, and names the line after an edit', async () => {
    const files = auditFiles(world.stack);
    const keyDirs = { iface: world.stack.keys.interface.dir, app: world.stack.keys.app.dir };
    for (const [name, file] of Object.entries(files)) {
      const snapshot = join(world.stack.dir, `${name}-snapshot.jsonl`);
      // Checkpoints first: each covers a line that is already in the trail when it is copied.
      await copyFile(`${file}.checkpoints`, `${snapshot}.checkpoints`);
      await copyFile(file, snapshot);
      const count = (await readAudit(snapshot)).length;
      const r = careRelay('audit', 'verify', snapshot, '--key', keyDirs[name as 'iface' | 'app']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^ok: ${count} entries, head seq ${count} hash [0-9a-f]{64}; [1-9]\\d* signed checkpoints`));
    }
    // Someone hides who read a record: the edited line is named.
    const tampered = join(world.stack.dir, 'app-tampered.jsonl');
    const lines = (await readFile(join(world.stack.dir, 'app-snapshot.jsonl'), 'utf8')).split('\n');
    const index = lines.findIndex((l) => l.includes('"action":"inbox.read"'));
    lines[index] = lines[index]!.replace('"actor":"reader"', '"actor":"someone-else"');
    await writeFile(tampered, lines.join('\n'));
    expect(careRelay('audit', 'verify', tampered, '--chain-only')).toMatchObject({ code: 1, stdout: `line ${index + 1}: hash mismatch (entry was altered)\n` });
    // Deleting a line breaks the chain at the next one.
    const deleted = join(world.stack.dir, 'app-deleted.jsonl');
    const kept = (await readFile(join(world.stack.dir, 'app-snapshot.jsonl'), 'utf8')).split('\n');
    kept.splice(index, 1);
    await writeFile(deleted, kept.join('\n'));
    expect(careRelay('audit', 'verify', deleted, '--chain-only').stdout).toBe(`line ${index + 1}: seq ${index + 2}, expected ${index + 1}\n`);
  }, 90_000);
});
