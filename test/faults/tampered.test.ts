// Scenario 8: healthy traffic both ways, then a tampered message, with built-in alert
// notifications on: while healthy the topic stays silent; the tampered message is
// quarantined and the app sends exactly one `started` for its quarantine, and exactly one
// `cleared` once the operator has emptied it. No PHI in any notification.
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope } from '../../services/core/envelope/envelope.ts';
import { seal } from '../../services/core/envelope/seal.ts';
import { fifoSendIds } from '../helpers/sqs.ts';
import { waitFor } from '../helpers/wait.ts';
import { fhir, pool, postWithRetry, report, scaled, startWorld, type ServiceProcess, type World } from './harness.ts';
import { startInboxReader } from './inboxReader.ts';

const PHI = 'Testperson^Alvina MRN-556677 SSN 123-45-6789';

let world: World;
let iface: ServiceProcess;
let app: ServiceProcess;

beforeAll(async () => {
  world = await startWorld({ alerts: {} });
  [iface, app] = await Promise.all([world.service('interface'), world.service('app')]);
}, 120_000);

afterAll(async () => {
  await world?.close();
});

/** Waits until `svc`'s gauges show a queue empty: an evaluation ran after the traffic settled. */
async function settled(svc: ServiceProcess, queue: string): Promise<void> {
  const empty = new RegExp(`care_relay_queue_messages\\{[^}]*queue="${queue}"[^}]*role="main"[^}]*state="(visible|in_flight)"[^}]*\\} 0`, 'g');
  await waitFor(async () => ((await (await fetch(`${svc.url}/metrics`)).text()).match(empty) ?? []).length === 2, { timeoutMs: 60_000, what: `${queue} drained in ${svc.name}'s gauges` });
}

describe('alert notifications on a tampered message', () => {
  it('none while healthy; one started and one cleared for the quarantine', async () => {
    const n = scaled(30, 10);
    const reader = startInboxReader(app, world.env.tokens.reader);
    const ids: string[] = [];
    await pool(n, 8, async (i) => {
      const a = await postWithRetry({ url: `${iface.url}/v1/submissions`, token: world.env.tokens.partner, body: fhir(`ok-in-${i}`), key: `ok-in-${i}` });
      const b = await postWithRetry({ url: `${app.url}/v1/chart-updates`, token: world.env.tokens.writer, body: fhir(`ok-out-${i}`), key: `ok-out-${i}` });
      if (a.kind === 'accepted') ids.push(a.id);
      if (b.kind === 'accepted') ids.push(b.id);
    });
    await waitFor(() => reader.books.acked.size >= n && world.sink.deliveries.size >= n, { timeoutMs: 60_000, what: 'traffic through both ways' });
    await reader.stop();
    await Promise.all([settled(app, 'interface-to-app'), settled(iface, 'app-to-interface')]);
    expect(await world.alerts!.read()).toEqual([]);

    // A sealed submission with PHI inside, one armored character changed on the wire.
    const envelope = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', partner: 'demo', contentType: 'application/fhir+json', body: JSON.stringify({ resourceType: 'Patient', name: PHI }) });
    const sealed = await seal(envelope, world.keys.interface.own, world.keys.interface.peers);
    const lines = sealed.body.split('\n');
    const i = Math.floor(lines.length / 2);
    lines[i] = (lines[i]![0] === 'A' ? 'B' : 'A') + lines[i]!.slice(1);
    await world.emulator.sqs.client.send(new SendMessageCommand({ QueueUrl: world.queues['interface-to-app'].url, MessageBody: lines.join('\n'), MessageAttributes: sealed.attributes, ...fifoSendIds(world.emulator.sqs, envelope.id) }));
    await world.alerts!.waitFor('CareRelayQuarantineNotEmpty', 'started', 'app');

    // The operator looks at it and removes it.
    const quarantine = world.queues['interface-to-app'].quarantineUrl;
    const got = await waitFor(async () => (await world.emulator.sqs.client.send(new ReceiveMessageCommand({ QueueUrl: quarantine, MaxNumberOfMessages: 10 }))).Messages);
    for (const m of got) await world.emulator.sqs.client.send(new DeleteMessageCommand({ QueueUrl: quarantine, ReceiptHandle: m.ReceiptHandle! }));
    const all = await world.alerts!.waitFor('CareRelayQuarantineNotEmpty', 'cleared', 'app');
    await Promise.all([settled(app, 'interface-to-app'), settled(iface, 'app-to-interface')]);
    await world.alerts!.read();

    report('tampered-alerts', {
      sent: ids.length + 1,
      delivered: ids.length,
      duplicatesSuppressed: 0,
      lost: 0,
      extra: { quarantined: got.length, notifications: all.length },
    });
    expect(got).toHaveLength(1);
    expect(world.alerts!.lines()).toEqual(['app started CareRelayQuarantineNotEmpty', 'app cleared CareRelayQuarantineNotEmpty']);
    expect(JSON.stringify(all)).not.toMatch(/Testperson|Alvina|556677|123-45-6789/);
  });
});
