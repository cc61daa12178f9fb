// `care-relay dlq|quarantine` runs against the emulator: what a confirmation covers, what a scan
// cannot reach (FIFO groups), long runs, and how usage errors and empty runs are reported.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CliIo } from '../../services/cli/io.ts';
import { runCli } from '../../services/cli/runner.ts';
import { purgeHeld } from '../../services/core/ops/index.ts';
import { stringAttribute } from '../../services/core/transport/attributes.ts';
import { ensureQueues, type EnsuredQueue, type LogicalQueue } from '../../services/core/transport/queues.ts';
import { deleteQueues, depth } from '../core/transport/helpers.ts';
import { startTestSqs, type TestSqs } from '../helpers/sqs.ts';

const PHI = 'Quillfeather^Ottoline MRN-7730991';

let sqs: TestSqs;
let dir: string;
let n = 0;
beforeAll(async () => {
  sqs = await startTestSqs();
  dir = mkdtempSync(join(tmpdir(), 'cr-held-'));
});
afterAll(async () => {
  await deleteQueues(sqs.client, sqs.prefix).catch(() => undefined);
  await sqs.stop();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Fresh queues under their own prefix. */
async function fresh<Q extends LogicalQueue>(queues: Q[], fifo = false): Promise<{ prefix: string; q: Record<Q, EnsuredQueue> }> {
  const prefix = `${sqs.prefix}h${n++}-`;
  return { prefix, q: await ensureQueues(sqs.client, { prefix, fifo, queues }) };
}

/** Puts a message straight into a hold queue, as the relay sets one aside (a ciphertext-like body with PHI in it). */
async function hold(url: string, reason: string, group?: string): Promise<string> {
  const id = randomUUID();
  await sqs.client.send(
    new SendMessageCommand({
      QueueUrl: url,
      MessageBody: `-----BEGIN PGP MESSAGE-----\n${PHI}\n-----END PGP MESSAGE-----`,
      MessageAttributes: { 'cr-envelope-id': stringAttribute(id), 'cr-reason': stringAttribute(reason) },
      ...(group ? { MessageGroupId: group, MessageDeduplicationId: randomUUID() } : {}),
    }),
  );
  return id;
}

/** An io that records what a run wrote; a terminal on stdin answering with `ask`. */
function memoryIo(env: Record<string, string>, ask: (question: string) => Promise<string> = async () => 'y'): CliIo & { out: string; err: string } {
  const io = {
    env: { ...sqs.serviceEnv(), ...env },
    out: '',
    err: '',
    stdout: (t: string) => void (io.out += t),
    stderr: (t: string) => void (io.err += t),
    stderrIsTTY: false,
    stdinIsTTY: true,
    columns: 80,
    ask,
  };
  return io;
}

function auditActions(file: string): string[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { action: string }).action);
}

function noPhi(io: { out: string; err: string }): void {
  for (const text of [io.out, io.err]) {
    expect(text).not.toContain('Quillfeather');
    expect(text).not.toContain('BEGIN PGP');
  }
}

describe('a confirmed redrive or purge', () => {
  it('acts only on the messages the confirmation listed: ones that arrived while the prompt waited are skipped and counted (the prompt said 3, 5 were purged)', async () => {
    const { prefix, q } = await fresh(['interface-to-app']);
    const url = q['interface-to-app'].dlqUrl;
    for (let i = 0; i < 3; i++) await hold(url, 'CR_ENVELOPE_SIGNER_NOT_PINNED');
    const audit = join(dir, `confirm-${prefix}.jsonl`);
    const questions: string[] = [];
    const io = memoryIo({ QUEUE_PREFIX: prefix, AUDIT_FILE: audit }, async (question) => {
      questions.push(question);
      // Two more are set aside while the operator reads the prompt.
      await hold(url, 'CR_ENVELOPE_SIGNER_NOT_PINNED');
      await hold(url, 'CR_ENVELOPE_SIGNER_NOT_PINNED');
      return 'y';
    });
    expect(await runCli(['dlq', 'purge', 'interface-to-app'], io), io.err).toBe(0);
    expect(questions).toEqual(['purge 3 message(s) from the dlq of interface-to-app for good? [y/N] ']);
    expect(io.out).toMatch(/^purge interface-to-app dlq: 3 purged, 0 failed, 2 skipped as newer than the confirmation, 5 looked at$/m);
    expect(io.out.match(/^purged {2}/gm)).toHaveLength(3);
    expect(auditActions(audit)).toEqual(['message.purged', 'message.purged', 'message.purged']);
    expect(await depth(sqs.client, url)).toEqual({ visible: 2, inFlight: 0 });
    noPhi(io);

    const json = memoryIo({ QUEUE_PREFIX: prefix, AUDIT_FILE: audit }, async () => {
      await hold(url, 'CR_ENVELOPE_SIGNER_NOT_PINNED');
      return 'y';
    });
    expect(await runCli(['dlq', 'redrive', 'interface-to-app', '--json'], json), json.err).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({ action: 'redrive', dryRun: false, confirmed: 2, skippedNewer: 1, partial: false });
    expect(await depth(sqs.client, url)).toEqual({ visible: 1, inFlight: 0 });
  });

  it('a run that finds nothing to act on says so plainly, not as a dry run', async () => {
    const { prefix, q } = await fresh(['interface-to-app']);
    await hold(q['interface-to-app'].dlqUrl, 'CR_EMR_HTTP_400');
    const io = memoryIo({ QUEUE_PREFIX: prefix, AUDIT_FILE: join(dir, `none-${prefix}.jsonl`) });
    expect(await runCli(['dlq', 'purge', 'interface-to-app', '--reason', 'CR_EMR_HTTP_503'], io), io.err).toBe(0);
    expect(io.out).toBe('purge interface-to-app dlq: none of the 1 message(s) looked at matches; nothing purged\n');
    expect(io.out).not.toContain('dry run');
    const dry = memoryIo({ QUEUE_PREFIX: prefix });
    expect(await runCli(['dlq', 'purge', 'interface-to-app', '--reason', 'CR_EMR_HTTP_503', '--dry-run'], dry)).toBe(0);
    expect(dry.out).toMatch(/^dry run: purge interface-to-app dlq: 0 would be purged, 0 failed, 1 looked at$/m);
  });
});

describe('what a scan cannot reach', () => {
  it('FIFO: matching messages behind non-matching ones of their group are reported as not reached (exit 1, CR_CLI_SCAN_INCOMPLETE), not as a success, and the group is released', async () => {
    const { prefix, q } = await fresh(['app-to-interface', 'interface-partner-callbacks'], true);
    const url = q['app-to-interface'].dlqUrl;
    for (let i = 0; i < 10; i++) await hold(url, 'CR_EMR_HTTP_400', 'app-to-interface');
    for (let i = 0; i < 3; i++) await hold(url, 'CR_EMR_HTTP_503', 'app-to-interface');
    const env = { QUEUE_PREFIX: prefix, QUEUE_FIFO: 'true', AUDIT_FILE: join(dir, `fifo-${prefix}.jsonl`) };

    const io = memoryIo(env);
    expect(await runCli(['dlq', 'redrive', 'app-to-interface', '--reason', 'CR_EMR_HTTP_503', '--yes'], io)).toBe(1);
    expect(io.err).toMatch(/^care-relay: CR_CLI_SCAN_INCOMPLETE redrive app-to-interface dlq: looked at \d+ of about 13 message\(s\) held at the start; the rest could not be reached/m);
    expect(await depth(sqs.client, url)).toEqual({ visible: 13, inFlight: 0 });
    expect(await depth(sqs.client, q['app-to-interface'].url)).toEqual({ visible: 0, inFlight: 0 });

    const listed = memoryIo(env);
    expect(await runCli(['dlq', 'list', 'app-to-interface', '--json'], listed)).toBe(1);
    expect(JSON.parse(listed.out)).toMatchObject({ heldAtStart: 13, partial: true, stoppedAtLimit: false });
    expect(JSON.parse(listed.err)).toMatchObject({ error: { code: 'CR_CLI_SCAN_INCOMPLETE' } });

    const shown = memoryIo(env);
    const behind = await hold(url, 'CR_EMR_HTTP_503', 'app-to-interface');
    expect(await runCli(['dlq', 'show', 'app-to-interface', behind], shown)).toBe(1);
    expect(shown.err).toMatch(/^care-relay: CR_OPS_MESSAGE_NOT_FOUND no message \S+ in the dlq of app-to-interface; only \d+ of about 14 held message\(s\) could be read \(on a FIFO queue/);

    const status = memoryIo(env);
    expect(await runCli(['status', '--service', 'interface'], status)).toBe(1);
    expect(status.out).toContain('(some held messages could not be read: counts by reason are partial)');
    expect(status.err).toMatch(/^care-relay: CR_CLI_SCAN_INCOMPLETE status: the DLQ or quarantine queue of app-to-interface held more messages than could be read/);
    for (const r of [io, listed, shown, status]) noPhi(r);
  });

  it('status shows interface-partner-callbacks among the interface\'s queues when it exists, and leaves it out when it does not', async () => {
    const withCallbacks = await fresh(['app-to-interface', 'interface-partner-callbacks']);
    const io = memoryIo({ QUEUE_PREFIX: withCallbacks.prefix });
    expect(await runCli(['status', '--service', 'interface', '--json'], io), io.err).toBe(0);
    expect((JSON.parse(io.out) as { services: Array<{ queues: Array<{ queue: string }> }> }).services[0]!.queues.map((x) => x.queue)).toEqual(['app-to-interface', 'interface-partner-callbacks']);
    const without = await fresh(['app-to-interface']);
    const io2 = memoryIo({ QUEUE_PREFIX: without.prefix });
    expect(await runCli(['status', '--service', 'interface', '--json'], io2), io2.err).toBe(0);
    expect((JSON.parse(io2.out) as { services: Array<{ queues: Array<{ queue: string }> }> }).services[0]!.queues.map((x) => x.queue)).toEqual(['app-to-interface']);
  });

  // The clock is moved forward inside the process, so the emulator must run in it too.
  it.skipIf(Boolean(process.env.SQS_ENDPOINT))('a run longer than the 300 s hold keeps the messages it leaves in place hidden and reaches every matching message (it stopped early, reporting success)', async () => {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    const { q } = await fresh(['interface-to-app'], true);
    const url = q['interface-to-app'].dlqUrl;
    // One group held first and left in place; another of six to purge, handed out one by one.
    await hold(url, 'CR_EMR_HTTP_400', 'left');
    for (let i = 0; i < 6; i++) await hold(url, 'CR_EMR_HTTP_503', 'purged');
    const deps = { client: sqs.client, queues: { 'interface-to-app': q['interface-to-app'] } };
    const audit = {
      record: async () => {
        // Each message acted on takes two minutes.
        vi.setSystemTime(Date.now() + 120_000);
      },
    };
    const r = await purgeHeld(deps, { queue: 'interface-to-app', role: 'dlq', reasons: ['CR_EMR_HTTP_503'], audit, actor: 'cli:test' });
    expect(r.items.map((i) => i.outcome)).toEqual(['done', 'done', 'done', 'done', 'done', 'done']);
    expect(r).toMatchObject({ scanned: 7, heldAtStart: 7, partial: false });
    vi.useRealTimers();
    expect(await depth(sqs.client, url)).toEqual({ visible: 1, inFlight: 0 });
  });
});

describe('usage errors of dlq and quarantine', () => {
  it('an invalid --ids value, a bad QUEUE and a missing --audit exit 2 with CR_CLI_USAGE or the option named, then the command\'s usage', async () => {
    const env = { QUEUE_PREFIX: `${sqs.prefix}u-` };
    const ids = memoryIo(env);
    expect(await runCli(['dlq', 'purge', 'interface-to-app', '--ids', 'not an id!', '--yes', '--audit', join(dir, 'u.jsonl')], ids)).toBe(2);
    expect(ids.err).toContain('ids: expected envelope ids or SQS message ids');
    expect(ids.err).toContain('usage: care-relay dlq');
    const reason = memoryIo(env);
    expect(await runCli(['quarantine', 'redrive', 'interface-to-app', '--reason', 'not a code', '--dry-run'], reason)).toBe(2);
    expect(reason.err).toContain('reason: expected a reason code');
    const show = memoryIo(env);
    expect(await runCli(['dlq', 'show', 'interface-to-app', 'not an id!'], show)).toBe(2);
    expect(show.err).toContain('usage: care-relay dlq');
    const queue = memoryIo(env);
    expect(await runCli(['dlq', 'list', 'billing'], queue)).toBe(2);
    expect(queue.err).toMatch(/^care-relay: CR_CLI_USAGE QUEUE: expected one of interface-to-app, app-to-interface, app-sms-redaction, interface-partner-callbacks .*\n\nusage: care-relay dlq list QUEUE/);
    const noAudit = memoryIo(env);
    expect(await runCli(['dlq', 'purge', 'interface-to-app', '--yes'], noAudit)).toBe(2);
    expect(noAudit.err).toMatch(/^care-relay: CR_CLI_USAGE --audit FILE is required .*\n\nusage: care-relay dlq/);
    const json = memoryIo(env);
    expect(await runCli(['dlq', 'purge', 'interface-to-app', '--yes', '--json'], json)).toBe(2);
    expect(JSON.parse(json.err)).toMatchObject({ error: { code: 'CR_CLI_USAGE' } });
  });
});
