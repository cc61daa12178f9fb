// The renewal of a lease kept while work runs (a long EMR delivery): its timing and failure
// handling, with fake timers. The DynamoDB side is tested in state.test.ts and
// test/interface/delivery/deliveryLease.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { keepLease } from '../../../services/core/state/leaseKeeper.ts';
import { captureLogger } from '../../helpers/logs.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('keepLease', () => {
  it('renews every `everyMs` while the work runs, and writes nothing for work that ends before the first tick', async () => {
    const renew = vi.fn(async () => true);
    const short = keepLease({ renew, everyMs: 1_000 });
    await vi.advanceTimersByTimeAsync(999);
    await short.stop();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(renew).not.toHaveBeenCalled();

    const long = keepLease({ renew, everyMs: 1_000 });
    await vi.advanceTimersByTimeAsync(3_500);
    expect(renew).toHaveBeenCalledTimes(3);
    await long.stop();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(renew).toHaveBeenCalledTimes(3);
    expect(long.lost.aborted).toBe(false);
  });

  it('a renewal the store failed is logged and tried again at the next tick; the lease is not lost for it', async () => {
    const log = captureLogger('interface');
    const renew = vi.fn<() => Promise<boolean>>().mockRejectedValueOnce(Object.assign(new Error('throttled'), { name: 'ProvisionedThroughputExceededException' })).mockResolvedValue(true);
    const lease = keepLease({ renew, everyMs: 1_000, logger: log.logger, bindings: { envelopeId: 'e-1', attempt: 2 } });
    await vi.advanceTimersByTimeAsync(2_000);
    expect(renew).toHaveBeenCalledTimes(2);
    expect(lease.lost.aborted).toBe(false);
    expect(log.entries()).toEqual([expect.objectContaining({ level: 40, msg: 'lease renewal failed', envelopeId: 'e-1', attempt: 2, code: 'ProvisionedThroughputExceededException' })]);
    await lease.stop();
  });

  it('a renewal whose condition failed (taken over) aborts `lost` and stops renewing', async () => {
    const log = captureLogger('interface');
    const renew = vi.fn<() => Promise<boolean>>().mockResolvedValueOnce(true).mockResolvedValue(false);
    const lease = keepLease({ renew, everyMs: 1_000, logger: log.logger, bindings: { envelopeId: 'e-2' } });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(lease.lost.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(lease.lost.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(renew).toHaveBeenCalledTimes(2);
    expect(log.entries().map((e) => e.msg)).toEqual(['lease taken over by another attempt; stopping the work']);
    await lease.stop();
  });

  it('one renewal at a time: a slow store skips ticks instead of piling writes up, and stop waits for the one under way', async () => {
    let finish: ((renewed: boolean) => void) | undefined;
    const renew = vi.fn(() => new Promise<boolean>((resolve) => (finish = resolve)));
    const lease = keepLease({ renew, everyMs: 1_000 });
    await vi.advanceTimersByTimeAsync(4_000);
    expect(renew).toHaveBeenCalledTimes(1);
    let stopped = false;
    const stopping = lease.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    finish!(true);
    await stopping;
    expect(stopped).toBe(true);
  });
});
