// Scenario 2: the SQS endpoint stops for a while (emulator stopped, restarted on the same
// port with its SQLite data). Intake answers 503 and never 202 without a queued message;
// both services recover without a restart; nothing queued before the outage is lost. With
// alert notifications on: none before the outage, and for each service exactly one
// `started` and one `cleared` CareRelayServiceNotReady (sent once SNS is back).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { depth, fhir, pool, postWithRetry, report, scaled, startWorld, type ServiceProcess, type World } from './harness.ts';
import { startInboxReader, type InboxReader } from './inboxReader.ts';

const OUTAGE_MS = 8_000;

let world: World;
let iface: ServiceProcess;
let app: ServiceProcess;

beforeAll(async () => {
  world = await startWorld({ alerts: { ALERT_NOT_READY_SECONDS: '2' } });
  [iface, app] = await Promise.all([world.service('interface'), world.service('app')]);
}, 120_000);

afterAll(async () => {
  await world?.close();
});

const outageRefusals = async (url: string, token: string, key: string): Promise<number> => {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', 'idempotency-key': key }, body: fhir(key) });
  await res.arrayBuffer();
  return res.status;
};

describe('SQS outage', () => {
  it('answers 503 while SQS is down, recovers without a restart, loses nothing queued before', async () => {
    const before = scaled(200, 10);
    const during = 5;
    const after = scaled(200, 10);
    const sentIn = new Map<string, string>();
    const sentOut = new Map<string, string>();
    const tokens = world.env.tokens;

    // Before: messages queued both ways; the inbox holds them unacknowledged (no reader yet),
    // and the EMR is slow, so chart updates are queued or in flight when SQS goes away.
    world.sink.setMode({ kind: 'slow', delayMs: 300 });
    await pool(before, 16, async (i) => {
      const a = await postWithRetry({ url: `${iface.url}/v1/submissions`, token: tokens.partner, body: fhir(`pre-in-${i}`), key: `pre-in-${i}` });
      if (a.kind === 'accepted') sentIn.set(a.id, `pre-in-${i}`);
      const b = await postWithRetry({ url: `${app.url}/v1/chart-updates`, token: tokens.writer, body: fhir(`pre-out-${i}`), key: `pre-out-${i}` });
      if (b.kind === 'accepted') sentOut.set(b.id, `pre-out-${i}`);
    });
    expect(sentIn.size + sentOut.size).toBe(2 * before);
    expect(await world.alerts!.read(), 'no notification while healthy').toEqual([]);

    await world.emulator.stop();
    const outageStarted = Date.now();
    // During: every attempt is refused with 503; a 202 would be an id with no queued message.
    const statuses: number[] = [];
    for (let i = 0; i < during; i++) {
      statuses.push(await outageRefusals(`${iface.url}/v1/submissions`, tokens.partner, `down-in-${i}`));
      statuses.push(await outageRefusals(`${app.url}/v1/chart-updates`, tokens.writer, `down-out-${i}`));
    }
    // The readiness probes say so too, once a receive has failed.
    await waitFor(async () => (await fetch(`${iface.url}/readyz`)).status === 503 && (await fetch(`${app.url}/readyz`)).status === 503, { timeoutMs: 30_000, what: 'not ready during the outage' });
    // The outage itself is time: it outlasts the visibility timeout (5 s), so held messages'
    // heartbeats fail and their visibility expires while SQS is away.
    await waitFor(() => Date.now() - outageStarted > OUTAGE_MS, { timeoutMs: OUTAGE_MS + 5_000, intervalMs: 100, what: 'outage duration' });
    const outageMs = Date.now() - outageStarted;
    await world.emulator.restart();

    // Same processes (no restart): ready again, and the refused requests succeed when retried.
    const pids = [iface.proc.child.pid, app.proc.child.pid];
    await waitFor(async () => (await fetch(`${iface.url}/readyz`)).ok && (await fetch(`${app.url}/readyz`)).ok, { timeoutMs: 60_000, what: 'ready after the outage' });
    world.sink.setMode({ kind: 'ok' });
    const reader: InboxReader = startInboxReader(app, tokens.reader);
    try {
      await pool(during + after, 16, async (i) => {
        const inKey = i < during ? `down-in-${i}` : `post-in-${i}`;
        const outKey = i < during ? `down-out-${i}` : `post-out-${i}`;
        const a = await postWithRetry({ url: `${iface.url}/v1/submissions`, token: tokens.partner, body: fhir(inKey), key: inKey });
        if (a.kind === 'accepted') sentIn.set(a.id, inKey);
        const b = await postWithRetry({ url: `${app.url}/v1/chart-updates`, token: tokens.writer, body: fhir(outKey), key: outKey });
        if (b.kind === 'accepted') sentOut.set(b.id, outKey);
      });
      const sqs = world.emulator.sqs;
      let drained = true;
      await waitFor(
        async () => {
          const [a, b] = await Promise.all([depth(sqs, world.queues['interface-to-app'].url), depth(sqs, world.queues['app-to-interface'].url)]);
          return a.total === 0 && b.total === 0 && [...sentOut.keys()].every((id) => world.sink.deliveries.has(id));
        },
        { timeoutMs: 90_000, intervalMs: 250, what: 'drained after the outage' },
      ).catch(() => (drained = false));
      await reader.stop();
      for (const svc of ['app', 'interface']) await world.alerts!.waitFor('CareRelayServiceNotReady', 'cleared', svc);
      const notified = world.alerts!.lines();
      const books = reader.books;
      const lostIn = [...sentIn.keys()].filter((id) => !books.seen.has(id));
      const lostOut = [...sentOut.keys()].filter((id) => !world.sink.deliveries.has(id));
      const extraAttempts = [...sentOut.keys()].reduce((n, id) => n + Math.max(0, (world.sink.deliveries.get(id)?.attempts ?? 1) - 1), 0);
      const accepted202 = statuses.filter((s) => s === 202).length;
      report('sqs-outage', {
        sent: sentIn.size + sentOut.size,
        delivered: sentIn.size - lostIn.length + sentOut.size - lostOut.length,
        duplicatesSuppressed: books.redelivered + extraAttempts,
        lost: lostIn.length + lostOut.length,
        extra: {
          'double-effects': books.doubleEffects.length,
          'queued-before': 2 * before,
          'refused-during': statuses.filter((s) => s === 503).length,
          'accepted-during': accepted202,
          'outage-s': (outageMs / 1000).toFixed(1),
          restarts: iface.generation - 1 + app.generation - 1,
          notifications: notified.length,
        },
      });
      for (const svc of ['app', 'interface']) {
        expect(notified.filter((l) => l.startsWith(`${svc} `))).toEqual([`${svc} started CareRelayServiceNotReady`, `${svc} cleared CareRelayServiceNotReady`]);
      }
      expect(statuses.every((s) => s === 503), `intake answers during the outage: ${statuses.join(',')}`).toBe(true);
      expect([iface.proc.child.pid, app.proc.child.pid]).toEqual(pids);
      expect(iface.generation + app.generation).toBe(2);
      expect(lostIn).toEqual([]);
      expect(lostOut).toEqual([]);
      expect(books.doubleEffects).toEqual([]);
      expect(drained).toBe(true);
      expect(sentIn.size).toBe(before + during + after);
      expect(sentOut.size).toBe(before + during + after);
    } finally {
      await reader.stop();
    }
  }, 300_000);
});
