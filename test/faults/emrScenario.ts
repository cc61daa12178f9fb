// Scenario 3: the EMR sink down (stopped), slow past EMR_TIMEOUT_MS, and flapping: chart
// updates are retried with backoff and delivered once per id (attempts may exceed 1 only
// when an earlier attempt reached the sink but its answer did not reach the interface: the
// sink's idempotency key suppresses it). When the EMR never recovers, every message ends in
// the DLQ by redrive after maxReceiveCount, nothing delivered, nothing lost. With alert
// notifications on, the outage is exactly one `started` and one `cleared`
// CareRelayEmrDeliveryFailing, and the flapping EMR at most one of each: never one per retry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureQueues, FIFO_ORDERING } from '../../services/core/transport/queues.ts';
import { startEmrSink, type EmrSink } from '../../services/devtools/emrSink.ts';
import { ensureTestStateTables } from '../helpers/sqs.ts';
import { waitFor } from '../helpers/wait.ts';
import { depth, drainQueue, fhir, pool, postWithRetry, report, scaled, sendSealedChartUpdate, startWorld, type ServiceProcess, type World } from './harness.ts';

const EMR_TIMEOUT_MS = 1000;
const DLQ_RECEIVES = 2;

/** Runs the EMR failure cases on standard queues, or on FIFO queues with `fifo` (whatever TEST_QUEUE_FIFO says). */
export function emrScenario(options: { fifo?: boolean } = {}): void {
  let world: World;
  let iface: ServiceProcess;
  let app: ServiceProcess;

  beforeAll(async () => {
    world = await startWorld({ ...(options.fifo === undefined ? {} : { fifo: options.fifo }), iface: { EMR_TIMEOUT_MS: String(EMR_TIMEOUT_MS) }, alerts: { ALERT_EMR_FAILING_SECONDS: '1' } });
    [iface, app] = await Promise.all([world.service('interface'), world.service('app')]);
  });

  afterAll(async () => {
    await world?.close();
  });

  async function chartUpdates(prefix: string, n: number): Promise<string[]> {
    const ids: string[] = [];
    await pool(n, 8, async (i) => {
      const key = `${prefix}-${i}`;
      // Each update names its record, as an application does: on FIFO queues the updates of
      // different records travel in their own ordered groups, so they are retried side by side.
      const r = await postWithRetry({ url: `${app.url}/v1/chart-updates`, token: world.env.tokens.writer, body: fhir(key), key, orderingKey: `record-${key}` });
      if (r.kind === 'accepted') ids.push(r.id);
    });
    expect(ids).toHaveLength(n);
    return ids;
  }

  async function delivered(sink: () => EmrSink, ids: string[], what: string): Promise<void> {
    const q = world.queues['app-to-interface'].url;
    await waitFor(async () => ids.every((id) => sink().deliveries.has(id)) && (await depth(world.emulator.sqs, q)).total === 0, { timeoutMs: 60_000, intervalMs: 200, what });
  }

  /** Notifications read so far, once any EMR-failing episode that started has cleared. */
  async function settledNotes(): Promise<string[]> {
    // Waits for a `cleared` after the last `started` (an earlier episode's `cleared` does not count).
    const lastState = async (): Promise<string | undefined> => (await world.alerts!.read()).filter((n) => n.alert === 'CareRelayEmrDeliveryFailing').at(-1)?.state;
    await waitFor(async () => (await lastState()) !== 'started', { timeoutMs: 60_000, what: 'the EMR-failing episode cleared' });
    return world.alerts!.lines();
  }

  function failuresLogged(reason: RegExp): number {
    return iface.lines().filter((l) => l.includes('EMR delivery failed') && reason.test(l)).length;
  }

  describe(`EMR failures${options.fifo ? ' (FIFO queues)' : ''}`, () => {
    const totals = { sent: 0, delivered: 0, extra: 0, lost: 0 };
    const perCase: Record<string, string> = {};
    const account = (name: string, ids: string[], sink: EmrSink): void => {
      const got = ids.filter((id) => sink.deliveries.has(id));
      const extra = got.reduce((n, id) => n + sink.deliveries.get(id)!.attempts - 1, 0);
      totals.sent += ids.length;
      totals.delivered += got.length;
      totals.extra += extra;
      totals.lost += ids.length - got.length;
      perCase[name] = `${got.length}/${ids.length}`;
    };

    afterAll(() => {
      report(`emr-down-slow-flapping${options.fifo ? '-fifo' : ''}`, { sent: totals.sent, delivered: totals.delivered, duplicatesSuppressed: totals.extra, lost: totals.lost, extra: perCase });
    });

    it('EMR down (stopped): retried with backoff, delivered once when it is back', async () => {
      const port = Number(new URL(world.sink.url).port);
      await world.sink.stop();
      const n = scaled(10, 5);
      const ids = await chartUpdates('down', n);
      await waitFor(() => failuresLogged(/CR_EMR_UNREACHABLE/) >= n, { timeoutMs: 30_000, what: 'delivery attempts refused while the EMR is down' });
      // The on-call engineer hears of it while the EMR is still down.
      await world.alerts!.waitFor('CareRelayEmrDeliveryFailing', 'started', 'interface');
      world.sink = await startEmrSink({ port });
      await delivered(() => world.sink, ids, 'delivered after the EMR came back');
      account('down', ids, world.sink);
      // The sink was down for the failed attempts: the first one it saw succeeded.
      expect(ids.map((id) => world.sink.deliveries.get(id)!.attempts)).toEqual(ids.map(() => 1));
      await world.alerts!.waitFor('CareRelayEmrDeliveryFailing', 'cleared', 'interface');
      expect(world.alerts!.lines()).toEqual(['interface started CareRelayEmrDeliveryFailing', 'interface cleared CareRelayEmrDeliveryFailing']);
    });

    it('EMR slower than EMR_TIMEOUT_MS: the timed-out attempt is retried, one delivery per id', async () => {
      const n = scaled(10, 5);
      world.sink.setMode({ kind: 'slow', delayMs: EMR_TIMEOUT_MS * 2, count: n });
      const ids = await chartUpdates('slow', n);
      await delivered(() => world.sink, ids, 'delivered after timeouts');
      expect(failuresLogged(/CR_EMR_TIMEOUT/)).toBeGreaterThanOrEqual(n);
      account('slow', ids, world.sink);
      // Each slow attempt was recorded by the sink after the interface gave up: the retry is
      // the same idempotency key, so the sink counts an attempt, not a second delivery.
      const attempts = ids.map((id) => world.sink.deliveries.get(id)!.attempts);
      expect(attempts.reduce((sum, a) => sum + a - 1, 0)).toBeGreaterThanOrEqual(n);
      // Which ids the n slow answers fall on depends on the queue. On a standard queue the n
      // updates are attempted side by side, so each draws one slow answer and is retried. On a
      // FIFO queue updates whose records share an ordering bucket are delivered one at a time:
      // the one at the head of a bucket may draw several slow answers while the others wait
      // behind it (docs/architecture.md, "FIFO queues"), so only the total above holds.
      const sequential = world.emulator.sqs.fifo && FIFO_ORDERING['app-to-interface'] === 'ordered';
      if (!sequential) for (const a of attempts) expect(a).toBeGreaterThanOrEqual(2);
      expect(world.sink.deliveries.size).toBe(new Set(world.sink.requests.filter((r) => r.status === 200).map((r) => r.envelopeId)).size);
    });

    it('EMR flapping (503 bursts between successes): every update delivered once', async () => {
      const n = scaled(30, 10);
      // The earlier cases' episode is over before the flapping starts.
      const notifiedBefore = (await settledNotes()).length;
      // Driven by requests, not the clock, so the load of the machine cannot change what the EMR
      // does: bursts of two 503s between two successes, until eight requests have failed.
      const failures = 8;
      world.sink.setMode({ kind: 'flap', status: 503, burst: 2, between: 2, failures });
      const ids = await chartUpdates('flap', n);
      await delivered(() => world.sink, ids, 'delivered through the flapping');
      account('flapping', ids, world.sink);
      expect(world.sink.requests.filter((r) => ids.includes(r.envelopeId) && r.status === 503)).toHaveLength(failures);
      await waitFor(() => failuresLogged(/CR_EMR_HTTP_503/) >= failures, { timeoutMs: 10_000, what: 'every 503 logged' });
      // Flood control: the flapping is one episode at most, however many attempts failed.
      const flapNotes = (await settledNotes()).slice(notifiedBefore);
      expect(flapNotes.length, flapNotes.join('; ')).toBeLessThanOrEqual(2);
      if (flapNotes.length > 0) expect(flapNotes).toEqual(['interface started CareRelayEmrDeliveryFailing', 'interface cleared CareRelayEmrDeliveryFailing']);
      // A 503 is answered before the sink records anything: one attempt per delivery.
      expect(ids.map((id) => world.sink.deliveries.get(id)!.attempts)).toEqual(ids.map(() => 1));
    });

    it('EMR never recovers: every message lands in the DLQ after maxReceiveCount, none lost', async () => {
      const prefix = `${world.emulator.prefix}dlq-`;
      const queues = await ensureQueues(world.emulator.sqs.client, { prefix, fifo: world.emulator.sqs.fifo, maxReceiveCount: DLQ_RECEIVES, visibilityTimeoutSeconds: 5, queues: ['interface-to-app', 'app-to-interface'] });
      // The interface on these queues keeps its state in its own table of that prefix.
      await ensureTestStateTables(world.emulator.sqs, prefix);
      const dead = await startEmrSink();
      dead.setMode({ kind: 'fail', status: 503 });
      try {
        await world.service('interface', { QUEUE_PREFIX: prefix, ...dead.serviceEnv(), EMR_TIMEOUT_MS: String(EMR_TIMEOUT_MS) });
        const n = 3;
        const ids: string[] = [];
        for (let i = 0; i < n; i++) ids.push(await sendSealedChartUpdate(world, queues['app-to-interface'].url, `dead-${i}`));
        const inDlq = await drainQueue(world.emulator.sqs, queues['app-to-interface'].dlqUrl, n, 60_000);
        const main = await depth(world.emulator.sqs, queues['app-to-interface'].url);
        const dlqIds = inDlq.map((m) => m.MessageAttributes?.['cr-envelope-id']?.StringValue);
        const attempts = dead.requests.length;
        const lost = ids.filter((id) => !dlqIds.includes(id)).length;
        report(`emr-never-recovers${options.fifo ? '-fifo' : ''}`, {
          sent: n,
          delivered: dead.deliveries.size,
          duplicatesSuppressed: 0,
          lost,
          extra: { 'dead-lettered': inDlq.length, 'emr-attempts': attempts, 'max-receive-count': DLQ_RECEIVES, 'left-in-main': main.total },
        });
        expect(dlqIds.sort()).toEqual([...ids].sort());
        expect(dead.deliveries.size).toBe(0);
        expect(main.total).toBe(0);
        // Retried up to the redrive count, not beyond.
        for (const id of ids) expect(dead.requests.filter((r) => r.envelopeId === id).length).toBe(DLQ_RECEIVES);
        // The DLQ copy is the original: ciphertext and wire attributes as sent.
        for (const m of inDlq) expect(m.Body).toMatch(/^-----BEGIN PGP MESSAGE-----/);
      } finally {
        await dead.stop();
      }
    });
  });
}
