// The callback ledger on the interface's state table: attempts counted fleet-wide, one at a time
// under a lease; a callback dead-lettered and then redriven from the DLQ starts over.
import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { createCallbackLedger } from '../../../services/interface/callbacks/ledger.ts';
import { useTestStateTable } from '../../helpers/sqs.ts';

const state = useTestStateTable('interface');

describe('callback ledger', () => {
  it('counts attempts across holders; a holder that stopped (lease run out) counts; a dead-lettered callback redriven starts over at attempt 1', async () => {
    const clock = { t: Date.now() };
    const a = createCallbackLedger({ table: state.table, holder: 'a', leaseMs: 1000, ttlSeconds: 3600, now: () => clock.t });
    const b = createCallbackLedger({ table: state.table, holder: 'b', leaseMs: 1000, ttlSeconds: 3600, now: () => clock.t });
    const id = `msg_${randomUUID()}`;
    expect(await a.begin(id)).toEqual({ status: 'go', attempt: 1 });
    expect(await b.begin(id)).toMatchObject({ status: 'busy' });
    await a.abandon(id);
    expect(await b.begin(id)).toEqual({ status: 'go', attempt: 2 });
    // b stops mid-attempt: once its lease ran out, the next attempt is the third.
    clock.t += 1500;
    expect(await a.begin(id)).toEqual({ status: 'go', attempt: 3 });
    await a.failed(id, 'CR_CALLBACK_ATTEMPTS_EXHAUSTED');
    // The operator redrives it from the DLQ: PARTNER_CALLBACK_MAX_ATTEMPTS attempts again, not one.
    expect(await b.begin(id)).toEqual({ status: 'go', attempt: 1 });
    expect((await state.table.get(`callback#${id}`))?.reason).toBeUndefined();
    await b.abandon(id);
    expect(await a.begin(id)).toEqual({ status: 'go', attempt: 2 });
    await a.finish(id, 'delivered', 204);
    expect(await b.begin(id)).toEqual({ status: 'finished', state: 'delivered', httpStatus: 204 });
  });
});
