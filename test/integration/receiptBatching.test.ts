// Several receipts per envelope through the real relay in one process: a burst of holds and acks
// reaches the interface in shared envelopes, each receipt applied once; with
// RECEIPTS_PER_ENVELOPE=1 every receipt travels alone (docs/wire-format.md, "Several receipts in one envelope").
import { afterEach, describe, expect, it } from 'vitest';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

let stack: TestStack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Submits `n` at once, acks them all at once once held, and waits for every status to read `acknowledged`; returns the receipt ids the interface applied. */
async function burst(s: TestStack, n: number): Promise<{ ids: string[]; applied: { envelopeId: string; receiptId: string; status: string }[] }> {
  const ids = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const res = await s.iface.server.inject({ method: 'POST', url: '/v1/submissions', headers: { ...bearer(s.tokens.partner), 'content-type': 'application/fhir+json' }, payload: `{"resourceType":"Observation","id":"o${i}"}` });
      expect(res.statusCode).toBe(202);
      return (res.json() as { id: string }).id;
    }),
  );
  const status = async (id: string) => ((await s.iface.server.inject({ method: 'GET', url: `/v1/submissions/${id}`, headers: bearer(s.tokens.partner) })).json() as { status?: string }).status;
  await waitFor(async () => (await Promise.all(ids.map(status))).every((st) => st === 'held'), { what: 'every submission held', timeoutMs: 60_000 });
  const acks = await Promise.all(ids.map((id) => s.app.server.inject({ method: 'POST', url: `/v1/inbox/${id}/ack`, headers: bearer(s.tokens.reader) })));
  expect(acks.map((r) => r.statusCode)).toEqual(ids.map(() => 200));
  await waitFor(async () => (await Promise.all(ids.map(status))).every((st) => st === 'acknowledged'), { what: 'every submission acknowledged', timeoutMs: 60_000 });
  const applied = s.logs.iface
    .entries()
    .filter((e) => e.msg === 'receipt applied' && ids.includes(e.envelopeId as string))
    .map((e) => ({ envelopeId: e.envelopeId as string, receiptId: e.receiptId as string, status: e.status as string }));
  return { ids, applied };
}

describe('receipts per envelope', () => {
  it('by default, receipts given while one envelope is on its way share the next: each applied once, every status reached', async () => {
    stack = await startStack();
    const { ids, applied } = await burst(stack, 24);
    // Two receipts per submission, each applied once, by its own id.
    expect(applied).toHaveLength(ids.length * 2);
    expect(new Set(applied.map((a) => a.receiptId)).size).toBe(applied.length);
    for (const id of ids) expect(applied.filter((a) => a.envelopeId === id).map((a) => a.status).sort()).toEqual(['acknowledged', 'held']);
    // Some travelled together: `<envelope id>.<index>`.
    const shared = applied.filter((a) => /\.\d+$/.test(a.receiptId));
    expect(shared.length).toBeGreaterThan(0);
  }, 240_000);

  it('RECEIPTS_PER_ENVELOPE=1 on the app sends every receipt alone', async () => {
    stack = await startStack({ appEnv: { RECEIPTS_PER_ENVELOPE: '1' } });
    const { ids, applied } = await burst(stack, 24);
    expect(applied).toHaveLength(ids.length * 2);
    expect(applied.filter((a) => /\.\d+$/.test(a.receiptId))).toEqual([]);
  }, 240_000);
});
