// Regression: an inbox ack answered 200 while the SQS delete had not happened (SQS
// unreachable), so after an app crash the acknowledged record came back: a double effect.
// The ack now answers 200 only once the acknowledgement is final: the id marked applied in the
// state table (another service, up through SQS's outage here: a copy SQS delivers again is a
// duplicate, never shown), or else the queue message deleted; 503 otherwise (the record may then
// be delivered again, which the client must expect for an unconfirmed ack).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { depth, fhir, postWithRetry, report, startWorld, type ServiceProcess, type World } from './harness.ts';

let world: World;
let iface: ServiceProcess;
let app: ServiceProcess;

beforeAll(async () => {
  world = await startWorld();
  [iface, app] = await Promise.all([world.service('interface'), world.service('app')]);
});

afterAll(async () => {
  await world?.close();
});

const reader = (): Record<string, string> => ({ authorization: `Bearer ${world.env.tokens.reader}` });
const held = async (): Promise<string[]> => {
  const res = await fetch(`${app.url}/v1/inbox?limit=1000`, { headers: reader() });
  return ((await res.json()) as { records: Array<{ id: string }> }).records.map((r) => r.id);
};

describe('inbox ack and the SQS delete', () => {
  it('ack answered 200 while SQS was unreachable: the record never comes back after a crash', async () => {
    const ids: string[] = [];
    for (const key of ['ack-a', 'ack-b']) {
      const r = await postWithRetry({ url: `${iface.url}/v1/submissions`, token: world.env.tokens.partner, body: fhir(key), key });
      if (r.kind === 'accepted') ids.push(r.id);
    }
    await waitFor(async () => (await held()).length === 2, { what: 'both held' });

    // SQS goes away; the application acknowledges both records.
    await world.emulator.stop();
    const statuses: number[] = [];
    for (const id of ids) {
      const res = await fetch(`${app.url}/v1/inbox/${id}/ack`, { method: 'POST', headers: reader() });
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    // The app crashes before SQS is back; then both return.
    await app.kill9();
    await world.emulator.restart();
    await app.start();

    const confirmed = ids.filter((_, i) => statuses[i] === 200);
    const back = new Set<string>();
    await waitFor(
      async () => {
        for (const id of await held()) {
          back.add(id);
          // An unconfirmed ack: the client acknowledges the redelivered record again.
          await (await fetch(`${app.url}/v1/inbox/${id}/ack`, { method: 'POST', headers: reader() })).arrayBuffer();
        }
        return (await depth(world.emulator.sqs, world.queues['interface-to-app'].url)).total === 0;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'queue empty after the crash' },
    );
    const doubleEffects = confirmed.filter((id) => back.has(id));
    report('ack-during-outage-then-crash', {
      sent: ids.length,
      delivered: ids.length,
      duplicatesSuppressed: [...back].filter((id) => !confirmed.includes(id)).length,
      lost: 0,
      extra: { 'acks-200': confirmed.length, 'acks-503': statuses.filter((s) => s === 503).length, 'double-effects': doubleEffects.length },
    });
    expect(doubleEffects, `ack statuses during the outage: ${statuses.join(',')}`).toEqual([]);
    // The state table was reachable: each ack was final, whatever SQS did.
    expect(statuses).toEqual([200, 200]);
  });
});
