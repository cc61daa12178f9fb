// A `held` receipt lingers (RECEIPT_LINGER_MS) for its `acknowledged`, through the real relay in one
// process: with a long linger the two leave together when the application acks, and the interface
// applies both from one envelope; an app stopped while a `held` still lingers sends it on its way out
// (docs/configuration.md, "Several receipts per envelope").
import { afterEach, describe, expect, it } from 'vitest';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

let stack: TestStack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Submits one FHIR resource and waits until the app's inbox lists it; answers its id. */
async function submitAndHold(s: TestStack): Promise<string> {
  const res = await s.iface.server.inject({ method: 'POST', url: '/v1/submissions', headers: { ...bearer(s.tokens.partner), 'content-type': 'application/fhir+json' }, payload: '{"resourceType":"Observation","id":"linger"}' });
  expect(res.statusCode).toBe(202);
  const { id } = res.json() as { id: string };
  await waitFor(
    async () => ((await s.app.server.inject({ method: 'GET', url: '/v1/inbox', headers: bearer(s.tokens.reader) })).json() as { records: { id: string }[] }).records.some((r) => r.id === id),
    { what: 'the record in the inbox', timeoutMs: 60_000 },
  );
  return id;
}

const statusOf = async (s: TestStack, id: string): Promise<string | undefined> =>
  ((await s.iface.server.inject({ method: 'GET', url: `/v1/submissions/${id}`, headers: bearer(s.tokens.partner) })).json() as { status?: string }).status;

/** The receipts the interface applied about `id`: their receipt ids and statuses. */
const appliedAbout = (s: TestStack, id: string) =>
  s.logs.iface
    .entries()
    .filter((e) => e.msg === 'receipt applied' && e.envelopeId === id)
    .map((e) => ({ receiptId: e.receiptId as string, status: e.status as string }));

describe('a lingering `held` receipt', () => {
  it('waits for the acknowledgement and travels with it: both applied from one envelope', async () => {
    stack = await startStack({ appEnv: { RECEIPT_LINGER_MS: '60000' } });
    const id = await submitAndHold(stack);
    // Held in the app, but the `held` receipt waits: the interface still says `queued`.
    expect(await statusOf(stack, id)).toBe('queued');
    const ack = await stack.app.server.inject({ method: 'POST', url: `/v1/inbox/${id}/ack`, headers: bearer(stack.tokens.reader) });
    expect(ack.statusCode).toBe(200);
    const s = stack;
    // The status moves in one write; each receipt is then logged (and audited) as applied.
    await waitFor(async () => (await statusOf(s, id)) === 'acknowledged' && appliedAbout(s, id).length === 2, { what: 'the submission acknowledged, both receipts applied', timeoutMs: 60_000 });
    const applied = appliedAbout(stack, id);
    expect(applied.map((a) => a.status)).toEqual(['held', 'acknowledged']);
    // One envelope: `<receipt envelope id>.<index>`, the same envelope id for both.
    const envelopes = applied.map((a) => /^(.+)\.\d+$/.exec(a.receiptId)?.[1]);
    expect(envelopes[0]).toBeDefined();
    expect(envelopes[1]).toBe(envelopes[0]);
  }, 120_000);

  it('is sent when the app stops before its linger is over', async () => {
    stack = await startStack({ appEnv: { RECEIPT_LINGER_MS: '60000' } });
    const id = await submitAndHold(stack);
    expect(await statusOf(stack, id)).toBe('queued');
    // Not acked: stopping releases the hold (SQS shows the record again later) and sends what waits.
    await stack.app.stop();
    const s = stack;
    // Well within the linger: only a sender that sends what waits when it stops gets it there in time.
    await waitFor(async () => (await statusOf(s, id)) === 'held' && appliedAbout(s, id).length === 1, { what: 'the lingering `held` applied', timeoutMs: 30_000 });
    expect(appliedAbout(stack, id).map((a) => a.status)).toEqual(['held']);
  }, 120_000);
});
