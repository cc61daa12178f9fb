// Scenario 6: clock skew. Chart updates sealed with the app's keys and a fixed `now`, sent
// straight to SQS with the wire attributes: sentAt in the future within
// MAX_CLOCK_SKEW_SECONDS is delivered; beyond it is quarantined CR_ENVELOPE_FROM_FUTURE;
// older than MESSAGE_MAX_AGE_SECONDS is quarantined CR_ENVELOPE_TOO_OLD. Nothing is retried.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { depth, drainQueue, report, sendSealedChartUpdate, startWorld, type World } from './harness.ts';

const SKEW_S = 60;
const MAX_AGE_S = 3600;

let world: World;

beforeAll(async () => {
  world = await startWorld({ iface: { MAX_CLOCK_SKEW_SECONDS: String(SKEW_S), MESSAGE_MAX_AGE_SECONDS: String(MAX_AGE_S) } });
  await world.service('interface');
});

afterAll(async () => {
  await world?.close();
});

describe('clock skew', () => {
  it('accepts sentAt within the skew, quarantines beyond it and past the maximum age', async () => {
    const q = world.queues['app-to-interface'];
    const now = Date.now();
    const within = new Date(now + (SKEW_S / 2) * 1000);
    // Signed at that future time too: the signature may be as far ahead as sentAt.
    const okId = await sendSealedChartUpdate(world, q.url, 'skew-within', { now: within, sealNow: within });
    const futureId = await sendSealedChartUpdate(world, q.url, 'skew-beyond', { now: new Date(now + SKEW_S * 3 * 1000) });
    const oldId = await sendSealedChartUpdate(world, q.url, 'too-old', { now: new Date(now - (MAX_AGE_S + 120) * 1000) });

    await waitFor(() => world.sink.deliveries.has(okId), { timeoutMs: 20_000, what: 'within-skew delivered' });
    const quarantined = await drainQueue(world.emulator.sqs, q.quarantineUrl, 2, 20_000);
    const reasons = Object.fromEntries(quarantined.map((m) => [m.MessageAttributes?.['cr-envelope-id']?.StringValue, m.MessageAttributes?.['cr-reason']?.StringValue]));
    await waitFor(async () => (await depth(world.emulator.sqs, q.url)).total === 0, { timeoutMs: 20_000, what: 'main queue empty' });
    const dlq = await depth(world.emulator.sqs, q.dlqUrl);
    const receives = quarantined.map((m) => Number(m.Attributes?.ApproximateReceiveCount ?? 0));

    report('clock-skew', {
      sent: 3,
      delivered: world.sink.deliveries.size,
      duplicatesSuppressed: 0,
      lost: [okId, futureId, oldId].filter((id) => !world.sink.deliveries.has(id) && !(id in reasons)).length,
      extra: { quarantined: quarantined.length, 'from-future': reasons[futureId] === 'CR_ENVELOPE_FROM_FUTURE' ? 1 : 0, 'too-old': reasons[oldId] === 'CR_ENVELOPE_TOO_OLD' ? 1 : 0, 'skew-s': SKEW_S, 'max-age-s': MAX_AGE_S },
    });
    expect(world.sink.deliveries.get(okId)?.attempts).toBe(1);
    expect([...world.sink.deliveries.keys()]).toEqual([okId]);
    expect(reasons).toEqual({ [futureId]: 'CR_ENVELOPE_FROM_FUTURE', [oldId]: 'CR_ENVELOPE_TOO_OLD' });
    expect(receives, 'quarantine copies are fresh messages').toEqual([1, 1]);
    expect(dlq.total).toBe(0);
    // Quarantined at once, not retried: one receive each on the main queue.
    expect(world.sink.requests.map((r) => r.envelopeId)).toEqual([okId]);
  });
});
