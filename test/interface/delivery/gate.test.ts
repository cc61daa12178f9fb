// The EMR gate: at most EMR_CONCURRENCY deliveries at once, the rest wait in order, and a
// place freed by a failure passes on; the consumer can meanwhile hold receipts.
import { describe, expect, it } from 'vitest';
import { createGate } from '../../../services/interface/delivery/gate.ts';

describe('gate', () => {
  it('runs at most `size` pieces of work at once, first come first served, and passes on the place of one that failed', async () => {
    const gate = createGate(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const releases: Array<() => void> = [];
    const work = (n: number, fail = false) =>
      gate(async () => {
        started.push(n);
        running++;
        most = Math.max(most, running);
        await new Promise<void>((resolve) => releases.push(resolve));
        running--;
        if (fail) throw new Error(`work ${n} failed`);
        return n;
      });
    const all = [work(1, true), work(2), work(3), work(4)];
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2]);
    releases.shift()!();
    await expect(all[0]).rejects.toThrow('work 1 failed');
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2, 3]);
    while (releases.length > 0 || started.length < 4) {
      releases.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    expect(await Promise.all(all.slice(1))).toEqual([2, 3, 4]);
    expect(most).toBe(2);
  });
});
