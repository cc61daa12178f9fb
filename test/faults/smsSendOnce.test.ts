// Scenario: SMS sends under an Idempotency-Key through kill -9 of the app. Each send is retried
// like a careful client (the same key on every attempt, on a network error, a 5xx, a 429 or 409
// CR_SMS_SEND_IN_PROGRESS) until it is answered 202 or 409 CR_SMS_OUTCOME_UNKNOWN. SignalWire
// takes no key of its own: judged at the fake SignalWire, by destination number (one per key),
// no key may have two messages. Every key answered 202 has its one message, with the sid it was
// answered. Every message at SignalWire, whatever its key's outcome, has the `sms.sending` line written before
// its create call, is redacted in the end and has its `sms.sent` line (written by the pending send job, marked
// recovered, for a send a kill cut off), and a key whose outcome was unknown then answers its sid. One kill comes while SignalWire holds the
// create calls (they are dropped with the connection, as a request SignalWire never finished is),
// so some keys end with their outcome open: never sent again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashId } from '../../services/core/log/logger.ts';
import { startFakeSignalWire, type FakeSignalWire } from '../../services/devtools/signalwire/index.ts';
import { readTrail } from '../helpers/trail.ts';
import { waitFor } from '../helpers/wait.ts';
import { pool, progressLines, report, rng, scaled, SCALE, startWorld, type ServiceProcess, type World } from './harness.ts';

const SEED = Number(process.env.FAULTS_SEED ?? Date.now() % 1_000_000);
const KILLS = 3;

let world: World;
let fake: FakeSignalWire;
let app: ServiceProcess;

beforeAll(async () => {
  fake = await startFakeSignalWire({ stepMs: 40 });
  world = await startWorld();
  // Fallback jobs soon after each send, so that a message whose status callback a kill lost is redacted within the scenario.
  app = await world.service('app', { REDACTION_SENT_GRACE_SECONDS: '1', REDACTION_FALLBACK_DELAY_SECONDS: '5' }, (url) => fake.serviceEnv(url));
});

afterAll(async () => {
  await world?.close();
  await fake?.stop();
});

type Outcome = { kind: 'sent'; sid: string } | { kind: 'unknown' } | { kind: 'refused'; status: number; code?: string };

async function sendUntilAnswered(key: string, to: string, body: string, deadline: number): Promise<Outcome> {
  for (let attempt = 1; ; attempt++) {
    let status = 0;
    let payload: { sid?: string; code?: string } = {};
    let retryAfter = 0;
    try {
      const res = await fetch(`${app.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${world.env.tokens.messenger}`, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ to, body }),
        signal: AbortSignal.timeout(15_000),
      });
      status = res.status;
      retryAfter = Number(res.headers.get('retry-after') ?? 0);
      payload = (await res.json()) as typeof payload;
    } catch {
      status = 0;
    }
    if (status === 202 && payload.sid) return { kind: 'sent', sid: payload.sid };
    if (status === 409 && payload.code === 'CR_SMS_OUTCOME_UNKNOWN') return { kind: 'unknown' };
    const again = status === 0 || status === 429 || status >= 500 || (status === 409 && payload.code === 'CR_SMS_SEND_IN_PROGRESS');
    if (!again || Date.now() > deadline) return { kind: 'refused', status, ...(payload.code ? { code: payload.code } : {}) };
    // The answer's Retry-After (a claim's lease left, up to a minute), else a capped backoff.
    await new Promise((r) => setTimeout(r, retryAfter > 0 ? Math.min(retryAfter, 10) * 1000 : Math.min(1000, 50 * 2 ** Math.min(attempt, 5))));
  }
}

describe('SMS sends under an Idempotency-Key through kill -9', () => {
  it('never sends a key twice; every key answered 202 has its one message; every message its sms.sending and sms.sent lines, and is redacted; an unknown outcome is answered once found', async () => {
    const n = scaled(200, 40);
    const random = rng(SEED);
    const outcomes = new Map<string, Outcome>();
    const keyOf = (i: number): string => `sms-${SEED}-${i}`;
    // One destination number per key: the fake keeps a message's number after its body is redacted.
    const toOf = (i: number): string => `+1555${String(2_000_000 + i).slice(-7)}`;
    let trafficDone = false;
    const kills: string[] = [];
    const deadline = Date.now() + 240_000;

    const chaos = (async () => {
      for (let k = 0; k < KILLS && !trafficDone; k++) {
        const until = Date.now() + 800 + random() * 1500;
        // Time is the scenario here: a kill at a random moment, checked for the end of traffic.
        while (!trafficDone && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
        if (trafficDone) break;
        // The first kill lands while SignalWire holds the create calls in flight.
        const release = k === 0 ? fake.faults.hold({ method: 'POST', path: /\/Messages\.json$/ }) : undefined;
        if (release) await new Promise((r) => setTimeout(r, 300));
        await app.kill9();
        release?.();
        kills.push(release ? 'during-create' : 'random');
        await app.start();
      }
    })();

    const stopProgress = progressLines('sms-send-once', () => ({ answered: outcomes.size, kills: kills.join(',') }));
    await pool(n, 8, async (i) => {
      outcomes.set(keyOf(i), await sendUntilAnswered(keyOf(i), toOf(i), `synthetic reminder ${SEED} ${i}`, deadline));
      // An application's pace, so that the sends span the kills.
      await new Promise((r) => setTimeout(r, 150));
    });
    trafficDone = true;
    await chaos;
    stopProgress();

    // Every message redacted, those whose send a kill cut off between its create call and its fallback job included:
    // the job each send enqueued before its create call finds them (a minute after the send).
    const unredacted = (): string[] => [...fake.store.messages.values()].filter((m) => m.body !== '').map((m) => m.sid);
    await waitFor(() => unredacted().length === 0, { timeoutMs: 180_000, intervalMs: 500, what: 'every message redacted' }).catch(() => undefined);

    const messagesTo = new Map<string, string[]>();
    for (const m of fake.store.messages.values()) messagesTo.set(m.to, [...(messagesTo.get(m.to) ?? []), m.sid]);
    const twice = [...messagesTo].filter(([, sids]) => sids.length > 1).map(([to]) => to);
    const sent = [...outcomes].filter(([, o]) => o.kind === 'sent') as Array<[string, { kind: 'sent'; sid: string }]>;
    const unknown = [...outcomes].filter(([, o]) => o.kind === 'unknown').map(([key]) => key);
    const refused = [...outcomes].filter(([, o]) => o.kind === 'refused').map(([key, o]) => `${key}: ${JSON.stringify(o)}`);
    const indexOf = (key: string): number => Number(key.split('-').at(-1));
    const sentWrong = sent.filter(([key, o]) => (messagesTo.get(toOf(indexOf(key))) ?? []).join() !== o.sid).map(([key]) => key);
    const unknownWithMessage = unknown.filter((key) => messagesTo.has(toOf(indexOf(key)))).length;
    // Every message has its sms.sent line, those of the sends a kill cut off too: the pending job that found the
    // message wrote it, marked recovered, and answered the key's claim with the sid.
    const hmacKey = world.env.app.HMAC_KEY!;
    const sentLinesNow = async (): Promise<Set<string | undefined>> => new Set((await readTrail(world.env.app.AUDIT_FILE!)).filter((l) => l.action === 'sms.sent' && l.outcome === 'success').map((l) => l.resourceId));
    const withoutLine = async (): Promise<string[]> => {
      const lines = await sentLinesNow();
      return [...fake.store.messages.values()].filter((m) => !lines.has(hashId(hmacKey, m.sid))).map((m) => m.sid);
    };
    await waitFor(async () => (await withoutLine()).length === 0, { timeoutMs: 60_000, intervalMs: 500, what: 'every message with its sms.sent line' }).catch(() => undefined);
    const unaudited = await withoutLine();
    const trail = await readTrail(world.env.app.AUDIT_FILE!);
    // A key whose outcome was unknown and whose message went out now answers its sid.
    const recovered = await Promise.all(unknown.filter((key) => messagesTo.has(toOf(indexOf(key)))).map(async (key) => {
      const i = indexOf(key);
      const answer = await sendUntilAnswered(key, toOf(i), `synthetic reminder ${SEED} ${i}`, Date.now() + 30_000);
      return { key, answer, sid: messagesTo.get(toOf(i))!.join() };
    }));
    const unrecovered = recovered.filter((r) => r.answer.kind !== 'sent' || r.answer.sid !== r.sid).map((r) => `${r.key}: ${JSON.stringify(r.answer)}`);
    // Every message out, whatever its key's outcome, has the sms.sending line written before its create call.
    const sendingLines = new Set(trail.filter((l) => l.action === 'sms.sending').map((l) => l.resourceId));
    const withoutSending = [...messagesTo.keys()].filter((to) => !sendingLines.has(hashId(world.env.app.HMAC_KEY!, to)));
    report('sms send-once', {
      sent: n,
      delivered: sent.length,
      duplicatesSuppressed: 0,
      lost: refused.length,
      extra: { unredacted: unredacted().length, 'sent-twice': twice.length, 'outcome-unknown': unknown.length, 'unknown-with-message': unknownWithMessage, 'recovered-on-retry': recovered.length - unrecovered.length, 'without-sending-line': withoutSending.length, kills: kills.join(','), seed: SEED, scale: SCALE },
    });

    expect(kills.length, 'kills happened while sends flowed').toBeGreaterThan(0);
    expect(twice, 'numbers that got the same key\'s message twice').toEqual([]);
    expect(refused, 'sends neither answered 202 nor outcome unknown').toEqual([]);
    expect(sentWrong, 'keys answered 202 whose sid is not their one message at SignalWire').toEqual([]);
    expect(unaudited, 'messages at SignalWire without an sms.sent line').toEqual([]);
    expect(unrecovered, 'keys whose outcome was unknown and whose message went out, not answered its sid on a retry').toEqual([]);
    expect(withoutSending.length, 'messages at SignalWire without an sms.sending line').toBe(0);
    expect(unredacted(), 'messages at SignalWire still holding their body').toEqual([]);
    expect(sent.length + unknown.length).toBe(n);
  }, 500_000);
});
