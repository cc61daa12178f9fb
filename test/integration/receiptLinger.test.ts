// Receipts linger (RECEIPT_LINGER_MS) for company, through the real relay in one process: a `held`
// for its `acknowledged`, and the `acknowledged` too, while the application's ack is answered once the
// id is marked applied; with a long linger the two leave together and the interface applies both
// from one envelope; an app stopped while receipts still linger sends them on its way out, and the
// acknowledged record's message is then deleted (docs/configuration.md, "Several receipts per envelope").
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
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

const queueCount = async (s: TestStack, attribute: 'ApproximateNumberOfMessages' | 'ApproximateNumberOfMessagesNotVisible'): Promise<number> => {
  const out = await s.sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: s.queues['interface-to-app'].url, AttributeNames: [attribute] }));
  return Number(out.Attributes?.[attribute] ?? NaN);
};
const inFlight = (s: TestStack) => queueCount(s, 'ApproximateNumberOfMessagesNotVisible');
const visible = (s: TestStack) => queueCount(s, 'ApproximateNumberOfMessages');

const statusOf = async (s: TestStack, id: string): Promise<string | undefined> =>
  ((await s.iface.server.inject({ method: 'GET', url: `/v1/submissions/${id}`, headers: bearer(s.tokens.partner) })).json() as { status?: string }).status;

/** The receipts the interface applied about `id`: their receipt ids and statuses. */
const appliedAbout = (s: TestStack, id: string) =>
  s.logs.iface
    .entries()
    .filter((e) => e.msg === 'receipt applied' && e.envelopeId === id)
    .map((e) => ({ receiptId: e.receiptId as string, status: e.status as string }));

describe('lingering receipts', () => {
  it('an `acknowledged` waits for company too: the ack is answered at once, and a stop sends both receipts in one envelope, then deletes the message', async () => {
    stack = await startStack({ appEnv: { RECEIPT_LINGER_MS: '60000' } });
    const id = await submitAndHold(stack);
    const ack = await stack.app.server.inject({ method: 'POST', url: `/v1/inbox/${id}/ack`, headers: bearer(stack.tokens.reader) });
    // Final once the id is marked applied: the 200 waits neither for the receipts nor for the delete.
    expect(ack.statusCode).toBe(200);
    expect(await statusOf(stack, id), 'both receipts still wait').toBe('queued');
    expect(await inFlight(stack), 'the message waits for its receipt').toBe(1);
    // A stop sends what lingers as it begins: the receipts leave, then the message is deleted, not released.
    await stack.app.stop();
    const s = stack;
    await waitFor(async () => (await statusOf(s, id)) === 'acknowledged' && appliedAbout(s, id).length === 2, { what: 'both receipts applied', timeoutMs: 30_000 });
    const envelopes = appliedAbout(stack, id).map((a) => /^(.+)\.\d+$/.exec(a.receiptId)?.[1]);
    expect(envelopes[0]).toBeDefined();
    expect(envelopes[1], 'one envelope').toBe(envelopes[0]);
    expect(await inFlight(stack), 'deleted').toBe(0);
    expect(await visible(stack), 'deleted, not released').toBe(0);
  }, 120_000);

  it('waits for the acknowledgement and travels with it once its wait is over: both applied from one envelope', async () => {
    // Long enough for the ack below to come within it, short enough to wait out.
    stack = await startStack({ appEnv: { RECEIPT_LINGER_MS: '10000' } });
    const id = await submitAndHold(stack);
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
