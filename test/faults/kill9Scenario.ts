// Scenario 1: kill -9 of the app or the interface service at random moments while
// messages flow both ways (partner submissions to the inbox, chart updates to the EMR).
// Counting (by envelope id): only a submission that got 202 is "sent", and each 202 id
// must reach the inbox reader or the EMR sink. A 202 id never seen is lost; an inbox record
// listed again after its ack answered 200 is a double effect; a record listed again in a
// new app process before any 200 ack is a suppressed duplicate, as is an EMR delivery
// attempt beyond the first for the same idempotency key (the sink records one delivery).
// Idempotency-Keys are claimed in the service's state table, so a retry that reaches a
// restarted service answers the id of the first attempt: an envelope the client never got a
// 202 for (`unconfirmed`) would be a second envelope for one key, and must not exist.
// Chart updates are written the way an application writes them: each of RECORDS records (a
// patient) gets its updates one after the other, naming the record as `Ordering-Key`. On FIFO
// queues each record's updates must reach the EMR in the order they were accepted (first
// delivery of each id, as the sink recorded them), through the kills; standard queues
// promise no order, so there it is reported only.
// The audit trails are checked through the kills too: every accepted submission has its
// `submission.accepted` line in the interface's trail and every accepted chart update its
// `message.relayed` line in the app's (a retry answered from a claim writes them again, marked
// `copy`: the request that sent may have been killed before them), every record the reader saw
// its `message.received` line in the app's trail and, once acknowledged (an ack whose answer a
// kill cut off is retried after the drain, and answered 200 again once applied), its `inbox.acked`
// line; every chart update the EMR got its
// `message.delivered` line in the interface's (a kill between the delivery ledger's write and
// the line is answered by the copy's line, marked `copy`); every chart update's status at the app
// reaches `delivered` (GET /v1/chart-updates/{id}), each with its `receipt.applied` line in the
// app's trail (the same for a kill between the status write and the line).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTrail } from '../helpers/trail.ts';
import { waitFor } from '../helpers/wait.ts';
import { depth, fhir, pool, postWithRetry, progressLines, report, rng, SCALE, startWorld, type ServiceProcess, type World } from './harness.ts';
import { startInboxReader, type InboxReader } from './inboxReader.ts';

const MAX_KILLS = Number(process.env.FAULTS_KILLS ?? 6);
const SEED = Number(process.env.FAULTS_SEED ?? Date.now() % 1_000_000);
const CONCURRENCY = Number(process.env.FAULTS_CONCURRENCY ?? 32);
const RECORDS = CONCURRENCY;
/** Traffic under kills, then the drain (up to 120 s): longer than the suite's default per test. */
const SCENARIO_TIMEOUT_MS = 480_000;

/** Options for {@link kill9Scenario}. */
export interface Kill9Options {
  /** Messages in all, half each way. */
  total: number;
  /** FIFO queues whatever TEST_QUEUE_FIFO says (true), or as it says (undefined). */
  fifo?: boolean;
}

/** Registers the kill -9 scenario (hooks and the test) in the calling test file. */
export function kill9Scenario(options: Kill9Options): void {
  const TOTAL = options.total;
  const INBOUND = Math.ceil(TOTAL / 2);
  const OUTBOUND = TOTAL - INBOUND;
  let world: World;
  let iface: ServiceProcess;
  let app: ServiceProcess;
  let reader: InboxReader;

  beforeAll(async () => {
    world = await startWorld({ common: { CRYPTO_WORKERS: '2' }, ...(options.fifo === undefined ? {} : { fifo: options.fifo }) });
    [iface, app] = await Promise.all([world.service('interface'), world.service('app')]);
    reader = startInboxReader(app, world.env.tokens.reader);
  });

  afterAll(async () => {
    await reader?.stop();
    await world?.close();
  });

  describe(`kill -9 under load${options.fifo ? ' (FIFO queues)' : ''}`, () => {
    it(`delivers every accepted message exactly once in effect (${TOTAL} messages, both directions)`, async () => {
      const random = rng(SEED);
      const started = Date.now();
      const sentIn = new Map<string, string>();
      const sentOut = new Map<string, string>();
      const notSent: string[] = [];
      let trafficDone = false;
      const kills: string[] = [];
      const restartMs: number[] = [];

      const chaos = (async () => {
        while (!trafficDone && kills.length < MAX_KILLS) {
          const wait = 1500 + random() * 2500;
          const until = Date.now() + wait;
          // Time is the scenario here: a kill at a random moment, checked for the end of traffic.
          while (!trafficDone && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
          if (trafficDone) break;
          const target = random() < 0.5 ? app : iface;
          await target.kill9();
          kills.push(target.name);
          const t0 = Date.now();
          await target.start();
          restartMs.push(Date.now() - t0);
        }
      })();

      const stopProgress = progressLines('kill-9', () => ({ in: sentIn.size, seen: reader.books.seen.size, out: sentOut.size, emr: world.sink.deliveries.size, kills: kills.join(','), 'restart-ms': restartMs.join(',') }));
      const inbound = pool(INBOUND, CONCURRENCY, async (i) => {
        const key = `in-${SEED}-${i}`;
        const r = await postWithRetry({ url: `${iface.url}/v1/submissions`, token: world.env.tokens.partner, body: fhir(key), key });
        if (r.kind === 'accepted') sentIn.set(r.id, key);
        else notSent.push(`${key}: ${r.kind} ${'status' in r ? r.status : 'last' in r ? r.last : ''}`);
      });
      const acceptedOrder = new Map<string, string[]>();
      const outbound = pool(RECORDS, RECORDS, async (record) => {
        const orderingKey = `patient-${SEED}-${record}`;
        const ids: string[] = [];
        acceptedOrder.set(orderingKey, ids);
        for (let i = record; i < OUTBOUND; i += RECORDS) {
          const key = `out-${SEED}-${i}`;
          const r = await postWithRetry({ url: `${app.url}/v1/chart-updates`, token: world.env.tokens.writer, body: fhir(key), key, orderingKey });
          if (r.kind === 'accepted') {
            sentOut.set(r.id, key);
            ids.push(r.id);
          } else notSent.push(`${key}: ${r.kind} ${'status' in r ? r.status : 'last' in r ? r.last : ''}`);
        }
      });
      await Promise.all([inbound, outbound]);
      console.log(`kill-9 traffic done t=${((Date.now() - started) / 1000).toFixed(0)}s`);
      const trafficMs = Date.now() - started;
      trafficDone = true;
      await chaos;

      // Drained: every queue empty (nothing left to redeliver), every 202 id seen.
      const q = world.queues;
      const sqs = world.emulator.sqs;
      let drained = true;
      await waitFor(
        async () => {
          const [a, b] = await Promise.all([depth(sqs, q['interface-to-app'].url), depth(sqs, q['app-to-interface'].url)]);
          return a.total === 0 && b.total === 0 && [...sentOut.keys()].every((id) => world.sink.deliveries.has(id));
        },
        { timeoutMs: 120_000, intervalMs: 250, what: 'queues drained' },
      ).catch(() => (drained = false));
      stopProgress();
      const side = await Promise.all(
        (['interface-to-app', 'app-to-interface'] as const).flatMap((n) => [depth(sqs, q[n].dlqUrl), depth(sqs, q[n].quarantineUrl)]),
      );
      const sideTotal = side.reduce((n, d) => n + d.total, 0);
      const books = reader.books;
      // Acks whose answer a kill cut off, retried once as their client would: each id that never came back was applied.
      const uncertainAcks = [...books.uncertain].filter((id) => !books.acked.has(id)).length;
      await reader.retryUncertain();

      const seenIn = [...sentIn.keys()].filter((id) => books.seen.has(id));
      const unconfirmedIn = [...books.seen.keys()].filter((id) => !sentIn.has(id)).length;
      const lostIn = [...sentIn.keys()].filter((id) => !books.seen.has(id));
      const killed = `app:${kills.filter((k) => k === 'app').length},interface:${kills.filter((k) => k === 'interface').length}`;
      report('kill-9 inbox', {
        sent: sentIn.size,
        delivered: seenIn.length,
        duplicatesSuppressed: books.redelivered,
        lost: lostIn.length,
        extra: { 'double-effects': books.doubleEffects.length, unconfirmed: unconfirmedIn, 'not-accepted': notSent.length, kills: killed, seed: SEED, scale: SCALE },
      });
      const deliveredOut = [...sentOut.keys()].filter((id) => world.sink.deliveries.has(id));
      const extraAttempts = deliveredOut.reduce((n, id) => n + world.sink.deliveries.get(id)!.attempts - 1, 0);
      const unconfirmedOut = [...world.sink.deliveries.keys()].filter((id) => !sentOut.has(id)).length;
      const lostOut = [...sentOut.keys()].filter((id) => !world.sink.deliveries.has(id));
      // The sink's map is in order of first delivery.
      const deliveredAt = new Map([...world.sink.deliveries.keys()].map((id, n) => [id, n]));
      const outOfOrder = [...acceptedOrder].filter(([, ids]) => ids.some((id, n) => n > 0 && (deliveredAt.get(id) ?? -1) < (deliveredAt.get(ids[n - 1]!) ?? -1))).map(([record]) => record);
      report('kill-9 emr', {
        sent: sentOut.size,
        delivered: deliveredOut.length,
        duplicatesSuppressed: extraAttempts,
        lost: lostOut.length,
        extra: { 'double-effects': 0, unconfirmed: unconfirmedOut, 'records-out-of-order': `${outOfOrder.length}/${RECORDS}`, fifo: String(world.emulator.sqs.fifo), 'dlq+quarantine': sideTotal, 'traffic-s': (trafficMs / 1000).toFixed(1), 'total-s': ((Date.now() - started) / 1000).toFixed(1) },
      });

      // Each effect has its line in the trail of the service that made it, whatever the kills cut.
      const [ifaceTrail, appTrail] = await Promise.all([readTrail(world.env.iface.AUDIT_FILE!), readTrail(world.env.app.AUDIT_FILE!)]);
      const linesOf = (trail: Awaited<ReturnType<typeof readTrail>>, action: string) => new Set(trail.filter((l) => l.action === action).map((l) => l.resourceId));
      const deliveredLines = linesOf(ifaceTrail, 'message.delivered');
      const receivedLines = linesOf(appTrail, 'message.received');
      const unauditedOut = deliveredOut.filter((id) => !deliveredLines.has(id));
      const unauditedIn = seenIn.filter((id) => !receivedLines.has(id));
      const acceptedLines = linesOf(ifaceTrail, 'submission.accepted');
      const relayedLines = linesOf(appTrail, 'message.relayed');
      const unacceptedIn = [...sentIn.keys()].filter((id) => !acceptedLines.has(id));
      const unrelayedOut = [...sentOut.keys()].filter((id) => !relayedLines.has(id));
      const copies = ifaceTrail.filter((l) => l.action === 'message.delivered' && l.details?.copy === true).length;
      // The app's status of each chart update, as the application reads it: the interface keeps a delivered
      // update's message until its `delivered` receipt is out, so the drained queues mean every receipt applied.
      const statusOut = new Map<string, string>();
      await pool(deliveredOut.length, 8, async (i) => {
        const id = deliveredOut[i]!;
        const res = await fetch(`${app.url}/v1/chart-updates/${id}`, { headers: { authorization: `Bearer ${world.env.tokens.writer}` } });
        statusOut.set(id, res.ok ? ((await res.json()) as { status: string }).status : `HTTP ${res.status}`);
      });
      const notDelivered = deliveredOut.filter((id) => statusOut.get(id) !== 'delivered').map((id) => `${id}: ${statusOut.get(id)}`);
      const appliedLines = linesOf(appTrail, 'receipt.applied');
      const unauditedReceipts = deliveredOut.filter((id) => statusOut.get(id) === 'delivered' && !appliedLines.has(id));
      const receiptCopies = appTrail.filter((l) => l.action === 'receipt.applied' && l.details?.copy === true).length;
      // Every record the application acknowledged (a 200, at once or on the retry) has its inbox.acked line.
      const unackedIn = seenIn.filter((id) => !books.acked.has(id));
      const ackedLines = new Set(appTrail.filter((l) => l.action === 'inbox.acked' && l.outcome === 'success').map((l) => l.resourceId));
      const unauditedAcks = [...books.acked].filter((id) => !ackedLines.has(id));
      const ackCopies = appTrail.filter((l) => l.action === 'inbox.acked' && l.details?.copy === true).length;
      // Acks whose only line is a copy: without the copies, these had no line.
      const firstAckLines = new Set(appTrail.filter((l) => l.action === 'inbox.acked' && l.outcome === 'success' && l.details?.copy !== true).map((l) => l.resourceId));
      const ackedOnlyByCopies = [...books.acked].filter((id) => ackedLines.has(id) && !firstAckLines.has(id)).length;
      console.log(
        `kill-9 audit: submission.accepted lines for ${sentIn.size - unacceptedIn.length}/${sentIn.size} submissions, message.relayed at the app for ${sentOut.size - unrelayedOut.length}/${sentOut.size} chart updates, ` +
          `message.delivered lines for ${deliveredOut.length - unauditedOut.length}/${deliveredOut.length} chart updates (${copies} written by copies), ` +
          `message.received for ${seenIn.length - unauditedIn.length}/${seenIn.length} records, ` +
          `inbox.acked for ${books.acked.size - unauditedAcks.length}/${books.acked.size} acknowledged records (${uncertainAcks} acks retried after a lost answer, ${ackCopies} lines written by copies, ${ackedOnlyByCopies} records whose only line is a copy; ${unackedIn.length} acks never answered 200, ${unackedIn.filter((id) => !ackedLines.has(id)).length} of them without a line), ` +
          `receipt.applied at the app for ${deliveredOut.length - notDelivered.length - unauditedReceipts.length}/${deliveredOut.length - notDelivered.length} delivered chart updates (${receiptCopies} written by copies)`,
      );

      // A second envelope for one key: name the key and both ids (their UUIDv7 times tell when each was decided).
      if (unconfirmedOut > 0) {
        const keyOf = (id: string) => (JSON.parse(world.sink.deliveries.get(id)!.body.toString()) as { id: string }).id;
        const idsByKey = new Map([...sentOut].map(([id, key]) => [key, id]));
        for (const id of world.sink.deliveries.keys()) {
          if (sentOut.has(id)) continue;
          const key = keyOf(id);
          const at = (uuid = '') => new Date(parseInt(uuid.replace(/-/g, '').slice(0, 12), 16) || 0).toISOString();
          console.log(`kill-9 unconfirmed: key=${key} delivered=${id} (${at(id)}) accepted=${idsByKey.get(key)} (${at(idsByKey.get(key))})`);
        }
      }
      expect(notSent, 'every submission is eventually accepted (retried with the same key)').toEqual([]);
      expect(kills.length, 'kills happened while traffic flowed').toBeGreaterThan(0);
      expect(lostIn, 'lost inbox records').toEqual([]);
      expect(lostOut, 'lost chart updates').toEqual([]);
      if (world.emulator.sqs.fifo) expect(outOfOrder, 'records whose updates reached the EMR out of the order accepted').toEqual([]);
      expect(books.doubleEffects, 'records listed again after a 200 ack').toEqual([]);
      expect(unconfirmedIn, 'inbox records for an envelope no partner got an id for (a second envelope for a key)').toBe(0);
      expect(unconfirmedOut, 'EMR deliveries of an envelope the writer got no id for').toBe(0);
      expect(sideTotal, 'nothing dead-lettered or quarantined').toBe(0);
      expect(unauditedOut, 'chart updates the EMR got without a message.delivered line').toEqual([]);
      expect(unauditedIn, 'inbox records without a message.received line').toEqual([]);
      expect(unackedIn, 'inbox records whose ack never answered 200, even retried after the drain').toEqual([]);
      expect(unauditedAcks, 'acknowledged inbox records without an inbox.acked line').toEqual([]);
      expect(unacceptedIn, 'accepted submissions without a submission.accepted line').toEqual([]);
      expect(unrelayedOut, 'accepted chart updates without a message.relayed line at the app').toEqual([]);
      expect(notDelivered, 'chart updates whose status at the app is not delivered').toEqual([]);
      expect(unauditedReceipts, 'delivered receipts applied at the app without a receipt.applied line').toEqual([]);
      expect(drained, 'queues drained').toBe(true);
      expect(sentIn.size + sentOut.size).toBe(TOTAL);
    }, SCENARIO_TIMEOUT_MS);
  });
}
