import { ReceiveMessageCommand, DeleteMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertNotification } from '../../services/core/alerts/floodControl.ts';
import { createAlertTopic, type AlertTopic, type ReadNotification } from '../helpers/alertTopic.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { startTestSqs, type TestSqs } from '../helpers/sqs.ts';
import { waitFor } from '../helpers/wait.ts';

// Built-in notifications end to end: both services on the emulator publish to an SNS topic,
// read back through an SQS subscription. Monitors are ticked by the test (the interval is
// an hour), so every evaluation is one the test asked for.
const PHI = 'Testperson Alvina MRN-556677';

let sqs: TestSqs;
let topic: AlertTopic;
let stack: TestStack;
const received: ReadNotification[] = [];

beforeAll(async () => {
  sqs = await startTestSqs();
  topic = await createAlertTopic(sqs);
  const env = { ALERT_SNS_TOPIC_ARN: topic.arn, ALERT_INTERVAL_SECONDS: '3600', ALERT_CLEAR_AFTER_SECONDS: '0', ALERT_EMR_FAILING_SECONDS: '0' };
  stack = await startStack({ sqs, ifaceEnv: env, appEnv: env });
});
afterAll(async () => {
  await stack?.stop();
  topic?.close();
  await sqs?.stop();
});

/** Ticks both monitors `times` times; returns every notification they decided. */
async function tick(times = 3): Promise<AlertNotification[]> {
  const out: AlertNotification[] = [];
  for (let i = 0; i < times; i++) out.push(...(await stack.iface.alerts.tick()), ...(await stack.app.alerts.tick()));
  return out;
}

/** Waits until the topic has delivered `n` notifications in all, then returns them all. */
async function readUntil(n: number): Promise<ReadNotification[]> {
  await waitFor(async () => (received.push(...(await topic.drain())), received.length >= n), { what: `${n} notifications on the topic` });
  return received;
}

async function auditActions(env: Record<string, string>): Promise<Array<{ action: string; details?: Record<string, unknown> }>> {
  const text = await readFile(env.AUDIT_FILE!, 'utf8');
  return text.trim().split('\n').map((l) => JSON.parse(l) as { action: string; details?: Record<string, unknown> });
}

describe('built-in alert notifications', () => {
  it('healthy traffic both ways sends none', async () => {
    const sub = await stack.iface.server.inject({
      method: 'POST',
      url: '/v1/submissions',
      headers: { authorization: `Bearer ${stack.tokens.partner}`, 'content-type': 'application/fhir+json' },
      payload: JSON.stringify({ resourceType: 'Patient', id: 'p1' }),
    });
    const { id } = sub.json() as { id: string };
    await waitFor(() => stack.app.inbox.get(id), { what: 'record in the inbox' });
    const ack = await stack.app.server.inject({ method: 'POST', url: `/v1/inbox/${id}/ack`, headers: { authorization: `Bearer ${stack.tokens.reader}` } });
    expect(ack.statusCode).toBe(200);
    const update = await stack.app.server.inject({
      method: 'POST',
      url: '/v1/chart-updates',
      headers: { authorization: `Bearer ${stack.tokens.writer}`, 'content-type': 'application/hl7-v2' },
      payload: 'MSH|^~\\&|APP|CARE|EMR|HOSP|202601011200||ORU^R01|1|P|2.5\r',
    });
    expect(update.statusCode).toBe(202);
    await waitFor(() => stack.sink.deliveries.size >= 1, { what: 'EMR delivery' });
    expect(await tick()).toEqual([]);
    expect(await topic.drain()).toEqual([]);
    const metrics = (await stack.app.server.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/care_relay_queue_messages\{[^}]*queue="interface-to-app"[^}]*role="quarantine"[^}]*state="visible"[^}]*\} 0/);
    expect(metrics).toMatch(/care_relay_ready\{[^}]*\} 1/);
  });

  it('a tampered message: one started for the quarantine, none while it holds, one cleared once it is emptied', async () => {
    await sqs.client.send(new SendMessageCommand({ QueueUrl: stack.queues['interface-to-app'].url, MessageBody: `-----BEGIN PGP MESSAGE-----\n${PHI}\n-----END PGP MESSAGE-----\n` }));
    await waitFor(async () => (await stack.app.server.inject({ method: 'GET', url: '/metrics' })).body.match(/messages_quarantined_total\{[^}]*queue="interface-to-app"[^}]*\} 1/), {
      what: 'quarantined',
    });
    const decided = await tick(5);
    expect(decided.map((n) => `${n.state} ${n.condition}`)).toEqual(['started CareRelayQuarantineNotEmpty']);
    const [started] = await readUntil(1);
    expect(started).toMatchObject({ service: 'app', alert: 'CareRelayQuarantineNotEmpty', state: 'started', subject: 'interface-to-app', severity: 'warning', facts: { messages: 1 } });
    expect(started!.runbook).toBe('docs/deploy.md#carerelayquarantinenotempty');

    // The operator empties the quarantine (after looking at it).
    const quarantineUrl = stack.queues['interface-to-app'].quarantineUrl;
    const got = await waitFor(async () => (await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: quarantineUrl, MaxNumberOfMessages: 10 }))).Messages?.[0]);
    await sqs.client.send(new DeleteMessageCommand({ QueueUrl: quarantineUrl, ReceiptHandle: got.ReceiptHandle! }));
    await waitFor(async () => (await tick(1)).length > 0, { what: 'cleared' });
    expect(await tick()).toEqual([]);
    const all = await readUntil(2);
    expect(all.map((n) => `${n.service} ${n.state} ${n.alert}`)).toEqual(['app started CareRelayQuarantineNotEmpty', 'app cleared CareRelayQuarantineNotEmpty']);
    expect(JSON.stringify(all)).not.toMatch(/Testperson|Alvina|556677/);
    const audited = (await auditActions(stack.env.app)).filter((e) => e.action === 'alert.notified');
    expect(audited.map((e) => e.details?.state)).toEqual(['started', 'cleared']);
    received.length = 0;
  });

  it('the EMR refusing deliveries: one started, one cleared once a delivery succeeds', async () => {
    stack.sink.setMode({ kind: 'fail', status: 503 });
    const send = () =>
      stack.app.server.inject({
        method: 'POST',
        url: '/v1/chart-updates',
        headers: { authorization: `Bearer ${stack.tokens.writer}`, 'content-type': 'application/hl7-v2' },
        payload: 'MSH|^~\\&|APP|CARE|EMR|HOSP|202601011200||ORU^R01|2|P|2.5\r',
      });
    expect((await send()).statusCode).toBe(202);
    await waitFor(async () => (await tick(1)).some((n) => n.condition === 'CareRelayEmrDeliveryFailing'), { what: 'EMR failing started' });
    stack.sink.setMode({ kind: 'ok' });
    await waitFor(() => stack.sink.deliveries.size >= 2, { what: 'redelivery once the EMR is back', timeoutMs: 60_000 });
    await waitFor(async () => (await tick(1)).some((n) => n.state === 'cleared'), { what: 'EMR failing cleared' });
    const all = await readUntil(2);
    expect(all.map((n) => `${n.service} ${n.state} ${n.alert}`)).toEqual(['interface started CareRelayEmrDeliveryFailing', 'interface cleared CareRelayEmrDeliveryFailing']);
  }, 120_000);
});
