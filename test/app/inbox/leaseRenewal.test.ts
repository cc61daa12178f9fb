// The held records' leases are renewed by one timer for all of them (issue 17's memory: one
// timer and closure per record was ~250 bytes each), each at least every interval, and the
// timer runs only while something is held.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLeaseRenewal } from '../../../services/app/inbox/leaseRenewal.ts';
import type { ApplyLedger } from '../../../services/core/state/applyLedger.ts';
import { captureLogger } from '../../helpers/logs.ts';

function countingLedger(fail = new Set<string>()): ApplyLedger & { renewed: string[] } {
  const renewed: string[] = [];
  return {
    renewed,
    claim: async () => ({ status: 'claimed' }),
    renew: async (id) => {
      renewed.push(id);
      if (fail.has(id)) throw Object.assign(new Error('throttled'), { name: 'ProvisionedThroughputExceededException' });
      return true;
    },
    applied: async () => {},
    release: async () => {},
  };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('lease renewal of held records', () => {
  it('renews every held id each interval with one timer, and stops renewing an id once it is no longer held', async () => {
    const ledger = countingLedger();
    const renewal = createLeaseRenewal(ledger, 10_000, captureLogger('app').logger);
    renewal.start('a');
    renewal.start('b');
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(ledger.renewed.sort()).toEqual(['a', 'b']);
    renewal.stop('a');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(ledger.renewed.sort()).toEqual(['a', 'b', 'b']);
  });

  it('runs no timer while nothing is held, and starts one again for the next record', async () => {
    const ledger = countingLedger();
    const renewal = createLeaseRenewal(ledger, 10_000, captureLogger('app').logger);
    renewal.start('a');
    renewal.stop('a');
    expect(vi.getTimerCount()).toBe(0);
    expect(renewal.size).toBe(0);
    renewal.start('c');
    await vi.advanceTimersByTimeAsync(9_999);
    expect(ledger.renewed).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(ledger.renewed).toEqual(['c']);
  });

  it('a failed renewal is logged with the envelope id and the error code, and the other leases are still renewed', async () => {
    const ledger = countingLedger(new Set(['bad']));
    const { logger, entries } = captureLogger('app');
    const renewal = createLeaseRenewal(ledger, 10_000, logger);
    renewal.start('bad');
    renewal.start('good');
    await vi.advanceTimersByTimeAsync(20_000);
    expect(ledger.renewed.filter((id) => id === 'good')).toHaveLength(2);
    expect(entries().filter((l) => l.msg === 'hold lease renewal failed')).toEqual([
      expect.objectContaining({ envelopeId: 'bad', code: 'ProvisionedThroughputExceededException' }),
      expect.objectContaining({ envelopeId: 'bad', code: 'ProvisionedThroughputExceededException' }),
    ]);
  });
});
