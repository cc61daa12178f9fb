// Scenario 4: the fake SignalWire answers 429 and 5xx in bursts and drops status callbacks,
// against the real app process (its webhook on a real port, its redaction worker on SQS):
// every message that was sent ends redacted, body blank and no media left. The redaction
// fallback is 2 s and the `sent` grace 1 s so it completes quickly. With alert notifications
// on, the burst's redaction backlog is one `started` and one `cleared`, never one per job:
// SignalWire answers the redaction's message reads slowly (held) until the backlog alert has
// started, so the backlog is surely there whatever the machine's load.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeSignalWire, type FakeSignalWire } from '../../services/devtools/signalwire/index.ts';
import { waitFor } from '../helpers/wait.ts';
import { depth, pool, report, rng, scaled, startWorld, type ServiceProcess, type World } from './harness.ts';

let world: World;
let fake: FakeSignalWire;
let app: ServiceProcess;

beforeAll(async () => {
  fake = await startFakeSignalWire({ stepMs: 40 });
  world = await startWorld({ alerts: { ALERT_REDACTION_BACKLOG: '10', ALERT_CLEAR_AFTER_SECONDS: '5' } });
  app = await world.service(
    'app',
    {
      REDACTION_FALLBACK_DELAY_SECONDS: '2',
      REDACTION_SENT_GRACE_SECONDS: '1',
    },
    (url) => fake.serviceEnv(url),
  );
});

afterAll(async () => {
  await world?.close();
  await fake?.stop();
});

describe('SMS redaction under SignalWire faults', () => {
  it('redacts every sent message through 429/5xx bursts and dropped callbacks', async () => {
    const n = scaled(40, 12);
    const random = rng(Number(process.env.FAULTS_SEED ?? 7));
    // Sends: 429 and 503 bursts (the create is retried only when SignalWire surely did not
    // accept it). Redaction: 5xx and 429 bursts on the media and message calls, some with
    // non-JSON bodies (the SDK throws a SyntaxError on those).
    fake.faults.inject({ count: 3, status: 429, retryAfter: 1, method: 'POST', path: /\/Messages\.json$/ });
    fake.faults.inject({ count: 2, status: 503, method: 'POST', path: /\/Messages\.json$/ });
    fake.faults.inject({ count: 4, status: 500, method: 'GET', path: /\/Media\.json$/ });
    fake.faults.inject({ count: 3, status: 502, nonJson: true, method: 'DELETE', path: /\/Media\// });
    fake.faults.inject({ count: 3, status: 429, retryAfter: 1, method: 'POST', path: /\/Messages\/[^/]+\.json$/ });
    fake.faults.inject({ count: 3, status: 503, method: 'GET', path: /\/Messages\/[^/]+\.json$/ });
    // A third of the callbacks are lost; the fallback job must still redact those messages.
    fake.callbacks.dropWhere(() => random() < 0.35);
    // A few messages stay at `sent` (no delivery report): redacted after the grace period.
    for (let i = 0; i < 3; i++) fake.nextOutcome('sent');

    const releaseRedaction = fake.faults.hold({ method: 'GET', path: /\/Messages\/[^/]+\.json$/ });

    const sids: string[] = [];
    const refused: number[] = [];
    await pool(n, 6, async (i) => {
      const mediaUrls = i % 2 === 0 ? [`http://127.0.0.1:9/media/${i}.png`, `http://127.0.0.1:9/media/${i}b.png`] : [];
      const res = await fetch(`${app.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${world.env.tokens.messenger}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: `+1555123${String(1000 + i).slice(-4)}`, body: `synthetic reminder ${i}`, mediaUrls }),
      });
      const payload = (await res.json()) as { sid?: string };
      if (res.status === 202 && payload.sid) sids.push(payload.sid);
      else refused.push(res.status);
    });

    await world.alerts!.waitFor('CareRelaySmsRedactionBacklog', 'started', 'app', 90_000).finally(releaseRedaction);

    const unredacted = (): string[] => sids.filter((sid) => (fake.message(sid)?.body ?? '') !== '' || fake.mediaOf(sid).length > 0);
    let done = true;
    await waitFor(() => unredacted().length === 0, { timeoutMs: 90_000, intervalMs: 200, what: 'every sent message redacted' }).catch(() => (done = false));
    fake.callbacks.dropWhere(undefined);
    const q = world.queues['app-sms-redaction'];
    const [dlq, quarantine] = await Promise.all([depth(world.emulator.sqs, q.dlqUrl), depth(world.emulator.sqs, q.quarantineUrl)]);
    // Every message SignalWire holds was sent through the app: none escaped the books.
    const stored = [...fake.store.messages.keys()];
    await world.alerts!.waitFor('CareRelaySmsRedactionBacklog', 'cleared', 'app', 90_000);
    const notified = world.alerts!.lines();
    const dropped = fake.callbacks.sent.filter((c) => c.dropped).length;
    report('sms-redaction', {
      sent: sids.length,
      delivered: sids.length - unredacted().length,
      duplicatesSuppressed: 0,
      lost: unredacted().length,
      extra: { 'not-sent': refused.length, 'callbacks-dropped': dropped, 'faults-left': fake.faults.remaining, 'stored-at-signalwire': stored.length, dlq: dlq.total, quarantine: quarantine.total, notifications: notified.length },
    });
    expect(done, `unredacted: ${unredacted().length}`).toBe(true);
    expect(refused, 'sends refused (the create is retried on 429/503)').toEqual([]);
    expect(stored.sort()).toEqual([...sids].sort());
    expect(dropped).toBeGreaterThan(0);
    expect(fake.faults.remaining).toBe(0);
    expect(dlq.total + quarantine.total).toBe(0);
    expect(notified).toEqual(['app started CareRelaySmsRedactionBacklog', 'app cleared CareRelaySmsRedactionBacklog']);
  });
});
