import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { decryptKey, readPrivateKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope } from '../../services/core/envelope/envelope.ts';
import { seal } from '../../services/core/envelope/seal.ts';
import { generateServiceKey } from '../../services/core/keys/generate.ts';
import { ownKeyring } from '../../services/core/keys/keyring.ts';
import { fifoSendIds } from '../helpers/sqs.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const main = resolve(import.meta.dirname, '../../services/cli/main.ts');
const SLOW = 480_000;
// Planted PHI: it must appear in no output of any command.
const PATIENT = 'Quillfeather^Ottoline';
const MRN = 'MRN-7730991';
const HL7 = `MSH|^~\\&|APP|CARE|EMR|HOSP|202601011200||ORU^R01|77|P|2.5\rPID|1||${MRN}||${PATIENT}\r`;

let stack: TestStack;
let env: Record<string, string>;

beforeAll(async () => {
  stack = await startStack();
  env = { PATH: process.env.PATH ?? '', ...stack.sqs.serviceEnv(), QUEUE_PREFIX: stack.sqs.prefix, QUEUE_FIFO: String(stack.sqs.fifo) };
}, SLOW);
afterAll(async () => {
  await stack?.stop();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real command; stdin is a pipe (not a terminal). */
function cli(args: string[], extra: Record<string, string> = {}): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [main, ...args], { env: { ...env, ...extra }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
    child.stdin.end();
  });
}

function noPhi(...runs: Run[]): void {
  for (const r of runs) {
    for (const text of [r.stdout, r.stderr]) {
      expect(text).not.toContain('Quillfeather');
      expect(text).not.toContain(MRN);
      expect(text).not.toContain('BEGIN PGP');
    }
  }
}

async function auditLines(file: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('care-relay dlq', () => {
  it('a dead-lettered chart update is listed and shown (metadata only), refused without --yes, left alone by a dry run, then redriven, audited and delivered', async () => {
    stack.sink.setMode({ kind: 'fail', status: 422, count: 1 });
    const res = await stack.app.server.inject({ method: 'POST', url: '/v1/chart-updates', headers: { authorization: `Bearer ${stack.tokens.writer}`, 'content-type': 'application/hl7-v2' }, payload: HL7 });
    expect(res.statusCode).toBe(202);
    const { id } = res.json<{ id: string }>();
    const listed = await waitFor(async () => {
      const r = await cli(['dlq', 'list', 'app-to-interface', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const parsed = JSON.parse(r.stdout) as { messages: Array<{ envelopeId: string; reason: string; signer: string; receiveCount: number; lastReceiveAt: string }> };
      return parsed.messages.find((m) => m.envelopeId === id) ? { run: r, parsed } : undefined;
    }, { what: 'the chart update in the DLQ', timeoutMs: 60_000 });
    const entry = listed.parsed.messages.find((m) => m.envelopeId === id)!;
    expect(entry).toMatchObject({ reason: 'CR_EMR_HTTP_422', signer: stack.keys.app.fingerprint });
    expect(Date.parse(entry.lastReceiveAt)).toBeGreaterThan(0);

    const text = await cli(['dlq', 'list', 'app-to-interface']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^envelope id\s+reason\s+signer/);
    expect(text.stdout).toContain(`${id}  CR_EMR_HTTP_422`);
    const shown = await cli(['dlq', 'show', 'app-to-interface', id]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`envelope id     ${id}`);
    expect(shown.stdout).toContain('reason          CR_EMR_HTTP_422');
    const shownJson = JSON.parse((await cli(['dlq', 'show', 'app-to-interface', id, '--json'])).stdout) as Record<string, unknown>;
    expect(Object.keys(shownJson).sort()).toEqual(['envelopeId', 'firstReceiveAt', 'groupId', 'lastReceiveAt', 'messageId', 'queue', 'reason', 'receiveCount', 'role', 'sentAt', 'signer']);

    const audit = join(stack.dir, 'cli-audit.jsonl');
    // Not a terminal and no --yes: refused, nothing moved.
    const refused = await cli(['dlq', 'redrive', 'app-to-interface', '--ids', id, '--audit', audit]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^care-relay: CR_CLI_CONFIRMATION_REQUIRED not a terminal: pass --yes/);
    // No audit trail: a usage error.
    expect((await cli(['dlq', 'purge', 'app-to-interface', '--yes'])).code).toBe(2);
    // Dry runs change nothing and audit nothing.
    const dry = await cli(['dlq', 'purge', 'app-to-interface', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would be purged  ${id}`);
    expect(dry.stdout).toMatch(/dry run: purge app-to-interface dlq: \d+ would be purged, 0 failed/);
    const dryJson = JSON.parse((await cli(['dlq', 'redrive', 'app-to-interface', '--dry-run', '--json', '--ids', id])).stdout) as { dryRun: boolean; items: Array<{ outcome: string }> };
    expect(dryJson).toMatchObject({ dryRun: true, items: [{ outcome: 'would' }] });
    expect(await auditLines(audit)).toEqual([]);
    const still = JSON.parse((await cli(['dlq', 'list', 'app-to-interface', '--json'])).stdout) as { messages: Array<{ envelopeId: string }> };
    expect(still.messages.map((m) => m.envelopeId)).toContain(id);
    expect(stack.sink.deliveries.has(id)).toBe(false);

    // The EMR is fixed: redrive it, it is delivered.
    stack.sink.setMode({ kind: 'ok' });
    const redriven = await cli(['dlq', 'redrive', 'app-to-interface', '--ids', id, '--yes', '--audit', audit]);
    expect(redriven.code, redriven.stderr).toBe(0);
    expect(redriven.stdout).toContain(`redriven  ${id}`);
    expect(redriven.stdout).toMatch(/redrive app-to-interface dlq: 1 redriven, 0 failed/);
    // Progress as plain lines when not a terminal.
    expect(redriven.stderr).toMatch(/^redrive app-to-interface dlq: \d+/m);
    expect(redriven.stderr).not.toContain('\r');
    const delivery = await waitFor(() => stack.sink.deliveries.get(id), { what: 'delivery of the redriven update', timeoutMs: 60_000 });
    expect(delivery.body.toString('utf8')).toBe(HL7);
    const lines = await auditLines(audit);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ action: 'message.redriven', resourceType: 'envelope', resourceId: id, outcome: 'success', service: 'cli', details: { queue: 'app-to-interface', from: 'dlq', reason: 'CR_EMR_HTTP_422' } });
    expect(String(lines[0]!.actor)).toMatch(/^cli:/);
    expect((await cli(['audit', 'verify', audit, '--chain-only'])).code).toBe(0);
    noPhi(listed.run, text, shown, refused, dry, redriven, { code: 0, stdout: await readFile(audit, 'utf8'), stderr: '' });
  }, SLOW);
});

describe('care-relay quarantine', () => {
  it('a redriven quarantined message is checked again: signed by an unpinned key, it is quarantined again and never reaches the inbox', async () => {
    const impostor = await generateServiceKey({ service: 'interface', passphrase: 'impostor-pass' });
    const key = await decryptKey({ privateKey: await readPrivateKey({ armoredKey: impostor.privateKey }), passphrase: 'impostor-pass' });
    const body = JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Quillfeather', given: ['Ottoline'] }], identifier: [{ value: MRN }] });
    const envelope = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', contentType: 'application/fhir+json', body });
    const sealed = await seal(envelope, ownKeyring(key), stack.keys.interface.peers);
    await stack.sqs.client.send(new SendMessageCommand({ QueueUrl: stack.queues['interface-to-app'].url, MessageBody: sealed.body, MessageAttributes: sealed.attributes, ...fifoSendIds(stack.sqs, randomUUID()) }));
    const held = async () => (JSON.parse((await cli(['quarantine', 'list', 'interface-to-app', '--json'])).stdout) as { messages: Array<{ envelopeId: string; reason: string; receiveCount: number }> }).messages;
    const first = await waitFor(async () => (await held()).find((m) => m.envelopeId === envelope.id), { what: 'quarantined', timeoutMs: 60_000 });
    expect(first.reason).toBe('CR_ENVELOPE_SIGNER_NOT_PINNED');

    const audit = join(stack.dir, 'cli-quarantine-audit.jsonl');
    const r = await cli(['quarantine', 'redrive', 'interface-to-app', '--reason', 'CR_ENVELOPE_SIGNER_NOT_PINNED', '--yes', '--audit', audit, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ action: 'redrive', role: 'quarantine', dryRun: false, items: [{ envelopeId: envelope.id, outcome: 'done' }] });
    expect(await auditLines(audit)).toMatchObject([{ action: 'message.redriven', resourceId: envelope.id, details: { from: 'quarantine', reason: 'CR_ENVELOPE_SIGNER_NOT_PINNED' } }]);
    // Back in quarantine once the app has opened it again (a new copy: its receive count starts over).
    await waitFor(async () => {
      const now = await held();
      return now.find((m) => m.envelopeId === envelope.id && m.reason === 'CR_ENVELOPE_SIGNER_NOT_PINNED');
    }, { what: 'quarantined again', timeoutMs: 60_000 });
    expect(stack.app.inbox.get(envelope.id)).toBeUndefined();

    // As if the redrive had been killed in the middle of an audit write: the trail ends in half a line.
    // The next command moves it aside, says so, records it, and goes on.
    const torn = '{"seq":2,"ts":"2026-';
    await appendFile(audit, torn);
    const purged = await cli(['quarantine', 'purge', 'interface-to-app', '--ids', envelope.id, '--yes', '--audit', audit]);
    expect(purged.code, purged.stderr).toBe(0);
    expect(purged.stderr).toMatch(/^audit trail .*cli-quarantine-audit\.jsonl ended in an incomplete line \(a write cut short\): 20 byte\(s\) moved to .*cli-quarantine-audit\.jsonl\.torn-[0-9a-f]{16}, recorded as audit\.torn_tail$/m);
    expect((await held()).find((m) => m.envelopeId === envelope.id)).toBeUndefined();
    const lines = await auditLines(audit);
    expect(lines.map((l) => l.action)).toEqual(['message.redriven', 'audit.torn_tail', 'message.purged']);
    expect(lines[1]).toMatchObject({ service: 'cli', resourceType: 'audit-trail', details: { of: 'trail', bytes: 20, afterSeq: 1 } });
    expect(String(lines[1]!.actor)).toMatch(/^cli:/);
    expect(await readFile(String((lines[1]!.details as { savedAs: string }).savedAs), 'utf8')).toBe(torn);
    expect((await cli(['audit', 'verify', audit, '--chain-only'])).code).toBe(0);
    noPhi(r, purged);
  }, SLOW);
});

describe('care-relay status', () => {
  it('shows each service: queues with held messages by reason, emergency mode, and from the running service the audit head and inbox fill', async () => {
    const appUrl = await stack.app.server.listen({ host: '127.0.0.1', port: 0 });
    const ifaceUrl = await stack.iface.server.listen({ host: '127.0.0.1', port: 0 });
    expect(appUrl).toMatch(/^http:/);
    const r = await cli(['status', '--json'], { CARE_RELAY_APP_URL: appUrl, CARE_RELAY_INTERFACE_URL: ifaceUrl, CARE_RELAY_ADMIN_TOKEN: stack.tokens.admin });
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as { services: Array<{ service: string; emergency: { ok: boolean; value: { active: boolean } }; live: { ok: boolean; value: { auditHead: { seq: number; hash: string }; inbox: { records: number; capacity: number } | null } }; queues: Array<{ queue: string }> }> };
    expect(s.services.map((x) => x.service)).toEqual(['interface', 'app']);
    const [iface, app] = s.services;
    // The interface consumes (and alerts on) the partner callbacks queue too.
    expect(iface!.queues.map((q) => q.queue)).toEqual(['app-to-interface', 'interface-partner-callbacks']);
    expect(app!.queues.map((q) => q.queue)).toContain('interface-to-app');
    for (const svc of [iface!, app!]) {
      expect(svc.emergency).toMatchObject({ ok: true, value: { active: false } });
      expect(svc.live.ok).toBe(true);
      expect(svc.live.value.auditHead.seq).toBeGreaterThan(0);
      expect(svc.live.value.auditHead.hash).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(iface!.live.value.inbox).toBeNull();
    expect(app!.live.value.inbox).toMatchObject({ records: expect.any(Number), capacity: expect.any(Number) });

    // Text form; a service that cannot be reached is shown as unknown, the rest still printed.
    const text = await cli(['status', '--service', 'app'], { CARE_RELAY_APP_URL: 'http://127.0.0.1:9', CARE_RELAY_ADMIN_TOKEN: stack.tokens.admin });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^app\n  emergency mode  off/);
    expect(text.stdout).toMatch(/inbox\s+unknown \(CR_CLI_SERVICE_UNREACHABLE: http:\/\/127\.0\.0\.1:9: \w+\)/);
    expect(text.stdout).toMatch(/\n  interface-to-app\n\s+visible\s+in flight\s+delayed\s+oldest\s+by reason\n\s+queue\s+\d+/);
    const wrongToken = await cli(['status', '--service', 'interface', '--json'], { CARE_RELAY_INTERFACE_URL: ifaceUrl, CARE_RELAY_ADMIN_TOKEN: 'not-the-admin-token-000000' });
    expect(JSON.parse(wrongToken.stdout)).toMatchObject({ services: [{ live: { ok: false, code: 'CR_CLI_SERVICE_UNREACHABLE', reason: `${ifaceUrl} answered 401` } }] });
    noPhi(r, text, wrongToken);
  }, SLOW);
});
