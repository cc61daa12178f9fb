// Scenario: a fleet. Two interface and two app instances (real processes) on one SQS
// emulator and one state store. Every submission is retried at random to either interface
// instance with the same Idempotency-Key, and every accepted one is sent once more to the
// other instance; instances are killed with kill -9 and restarted during the run. Judged by
// envelope id: every key answers exactly one envelope id, every envelope is exactly one inbox
// record (no id the partner never got, nothing listed again after its ack), none lost; and every
// accepted submission has its `submission.accepted` line in an interface's trail, every record
// its `message.received` line and, once acknowledged (an ack whose answer a kill cut off is
// retried after the drain, at either instance), its `inbox.acked` line in an app's, through the kills.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTrail } from '../helpers/trail.ts';
import { waitFor } from '../helpers/wait.ts';
import { depth, fhir, pool, postWithRetry, progressLines, report, rng, scaled, SCALE, startWorld, type ServiceProcess, type World } from './harness.ts';
import { newBooks, startInboxReader, type InboxReader } from './inboxReader.ts';

const TOTAL = scaled(10_000, 40);
const MAX_KILLS = Number(process.env.FAULTS_KILLS ?? 6);
const SEED = Number(process.env.FAULTS_SEED ?? Date.now() % 1_000_000);
// Partners' requests in flight at once (FAULTS_CONCURRENCY). At 64 the SQS and state-store batches fill as
// at a busy hub: the same 10,000 submissions take about a fifth less time than at 16 on 2 cores, the
// machine's CPU going mostly to SDK calls per message (docs/benchmarks.md, "The fault suite's fleet").
const CONCURRENCY = Number(process.env.FAULTS_CONCURRENCY ?? 64);

let world: World;
let ifaces: ServiceProcess[];
let apps: ServiceProcess[];
let readers: InboxReader[];
const books = newBooks();
/** Each instance's audit trail: one writer per file. */
const trailOf = (name: string, n: number): string => `${world.dir}/${name}-${n}-audit.jsonl`;

beforeAll(async () => {
  world = await startWorld({ common: { CRYPTO_WORKERS: '1' } });
  // One audit trail per process (one writer per file); one state table per service, shared.
  const audit = (name: string, n: number): Record<string, string> => ({ AUDIT_FILE: trailOf(name, n) });
  ifaces = await Promise.all([world.service('interface', audit('interface', 1)), world.service('interface', audit('interface', 2))]);
  apps = await Promise.all([world.service('app', audit('app', 1)), world.service('app', audit('app', 2))]);
  readers = apps.map((app) => startInboxReader(app, world.env.tokens.reader, { books }));
});

afterAll(async () => {
  await Promise.all((readers ?? []).map((r) => r.stop()));
  await world?.close();
});

describe('a fleet of two interface and two app instances', () => {
  it(`applies every Idempotency-Key exactly once across instances and kill -9 (${TOTAL} submissions)`, async () => {
    const random = rng(SEED);
    const started = Date.now();
    const idsByKey = new Map<string, Set<string>>();
    const sent = new Map<string, string>();
    const notSent: string[] = [];
    let trafficDone = false;
    const kills: string[] = [];

    const chaos = (async () => {
      while (!trafficDone && kills.length < MAX_KILLS) {
        const until = Date.now() + 1500 + random() * 2500;
        // Time is the scenario here: a kill at a random moment, checked for the end of traffic.
        while (!trafficDone && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
        if (trafficDone) break;
        const all = [...ifaces, ...apps];
        const target = all[Math.floor(random() * all.length)]!;
        await target.kill9();
        kills.push(target.name);
        await target.start();
      }
    })();

    const stopProgress = progressLines('fleet', () => ({ accepted: sent.size, seen: books.seen.size, acked: books.acked.size, kills: kills.join(',') }), 15_000);
    const answer = (key: string, id: string): void => {
      const ids = idsByKey.get(key) ?? new Set<string>();
      ids.add(id);
      idsByKey.set(key, ids);
    };
    await pool(TOTAL, CONCURRENCY, async (i) => {
      const key = `fleet-${SEED}-${i}`;
      const body = fhir(key);
      const token = world.env.tokens.partner;
      const pickUrl = (): string => `${ifaces[random() < 0.5 ? 0 : 1]!.url}/v1/submissions`;
      const r = await postWithRetry({ url: pickUrl(), pickUrl, token, body, key });
      if (r.kind !== 'accepted') {
        notSent.push(`${key}: ${r.kind}`);
        return;
      }
      sent.set(r.id, key);
      answer(key, r.id);
      // The partner retries anyway (it never saw the answer): to any instance, same key.
      const again = await postWithRetry({ url: pickUrl(), pickUrl, token, body, key });
      if (again.kind === 'accepted') answer(key, again.id);
      else notSent.push(`${key} (retry): ${again.kind}`);
    });
    const trafficMs = Date.now() - started;
    trafficDone = true;
    await chaos;

    const q = world.queues;
    const sqs = world.emulator.sqs;
    let drained = true;
    await waitFor(
      async () => {
        const main = await depth(sqs, q['interface-to-app'].url);
        // An ack whose answer was lost in a kill is uncertain, not missing: seen and drained is the end.
        return main.total === 0 && [...sent.keys()].every((id) => books.seen.has(id));
      },
      { timeoutMs: 180_000, intervalMs: 250, what: 'every accepted submission in an inbox, queue drained' },
    ).catch(() => (drained = false));
    stopProgress();
    const side = await Promise.all([depth(sqs, q['interface-to-app'].dlqUrl), depth(sqs, q['interface-to-app'].quarantineUrl)]);
    const sideTotal = side.reduce((n, d) => n + d.total, 0);
    // Acks whose answer a kill cut off, retried once at one instance as their client would: an id applied at
    // either instance answers 200 there (the state store is shared), and writes its line again, marked copy.
    const uncertainAcks = [...books.uncertain].filter((id) => !books.acked.has(id)).length;
    await readers[0]!.retryUncertain();

    // The instances' trails together: each effect has its line in the trail of the instance that made it.
    const linesOf = async (name: string, action: string): Promise<Set<string | undefined>> =>
      new Set((await Promise.all([1, 2].map((n) => readTrail(trailOf(name, n))))).flat().filter((l) => l.action === action).map((l) => l.resourceId));
    const [acceptedLines, receivedLines] = await Promise.all([linesOf('interface', 'submission.accepted'), linesOf('app', 'message.received')]);
    // An ack's line counts only as a success: a 503 (not final) writes a failure line and no 200.
    const appTrails = (await Promise.all([1, 2].map((n) => readTrail(trailOf('app', n))))).flat();
    const ackedLines = new Set(appTrails.filter((l) => l.action === 'inbox.acked' && l.outcome === 'success').map((l) => l.resourceId));
    const unauditedAccepted = [...sent.keys()].filter((id) => !acceptedLines.has(id));
    const unauditedReceived = [...sent.keys()].filter((id) => books.seen.has(id) && !receivedLines.has(id));
    const unacked = [...sent.keys()].filter((id) => books.seen.has(id) && !books.acked.has(id));
    const unauditedAcks = [...books.acked].filter((id) => !ackedLines.has(id));
    // Acks whose only line is a copy: without the copies, these had no line.
    const firstAckLines = new Set(appTrails.filter((l) => l.action === 'inbox.acked' && l.outcome === 'success' && l.details?.copy !== true).map((l) => l.resourceId));
    const ackedOnlyByCopies = [...books.acked].filter((id) => ackedLines.has(id) && !firstAckLines.has(id)).length;
    console.log(
      `fleet audit: submission.accepted lines for ${sent.size - unauditedAccepted.length}/${sent.size}, message.received for ${sent.size - unauditedReceived.length}/${sent.size}, ` +
        `inbox.acked for ${books.acked.size - unauditedAcks.length}/${books.acked.size} acknowledged records (${uncertainAcks} acks retried after a lost answer, ${ackedOnlyByCopies} records whose only line is a copy); ${unacked.length} acks never answered 200, ${unacked.filter((id) => !ackedLines.has(id)).length} of them without a line`,
    );

    const keysWithTwoIds = [...idsByKey].filter(([, ids]) => ids.size !== 1).map(([key]) => key);
    const unconfirmed = [...books.seen.keys()].filter((id) => !sent.has(id));
    const lost = [...sent.keys()].filter((id) => !books.seen.has(id));
    report('fleet inbox', {
      sent: sent.size,
      delivered: [...sent.keys()].filter((id) => books.seen.has(id)).length,
      duplicatesSuppressed: books.redelivered,
      lost: lost.length,
      extra: {
        'double-effects': books.doubleEffects.length,
        unconfirmed: unconfirmed.length,
        'keys-with-two-ids': keysWithTwoIds.length,
        kills: kills.join(','),
        seed: SEED,
        scale: SCALE,
        'traffic-s': (trafficMs / 1000).toFixed(1),
      },
    });

    expect(notSent, 'every submission and its retry accepted').toEqual([]);
    expect(kills.length, 'kills happened while traffic flowed').toBeGreaterThan(0);
    expect(keysWithTwoIds, 'every key answers exactly one envelope id').toEqual([]);
    expect(unconfirmed, 'no envelope the partner never got an id for').toEqual([]);
    expect(lost, 'lost submissions').toEqual([]);
    expect(books.doubleEffects, 'records listed again after a 200 ack').toEqual([]);
    expect(sideTotal, 'nothing dead-lettered or quarantined').toBe(0);
    expect(drained, 'queue drained').toBe(true);
    expect(unauditedAccepted, 'accepted submissions without a submission.accepted line').toEqual([]);
    expect(unauditedReceived, 'inbox records without a message.received line').toEqual([]);
    expect(unacked, 'inbox records whose ack never answered 200, even retried after the drain').toEqual([]);
    expect(unauditedAcks, 'acknowledged inbox records without an inbox.acked line').toEqual([]);
    expect(sent.size).toBe(TOTAL);
  }, 900_000);
});
