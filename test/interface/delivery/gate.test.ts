// The EMR gate: at most EMR_CONCURRENCY deliveries at once, the rest wait in order, and a
// place freed by a failure passes on; the consumer can meanwhile hold receipts.
import { describe, expect, it } from 'vitest';
import type { ReceivedMessage } from '../../../services/core/transport/consumerTypes.ts';
import type { Envelope } from '../../../services/core/envelope/envelope.ts';
import { createGate, gateKind } from '../../../services/interface/delivery/gate.ts';

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

  it('gates only the named kind; one still waiting at shutdown is released, never started', async () => {
    const releases: Array<() => void> = [];
    const started: string[] = [];
    const slow = async (envelope: Envelope) => {
      started.push(envelope.id);
      await new Promise<void>((resolve) => releases.push(resolve));
      return { status: 'done' } as const;
    };
    const effects = gateKind('chart.update', 1, { 'chart.update': slow, 'delivery.receipt': slow });
    const message = {} as ReceivedMessage;
    const e = (id: string) => ({ id }) as Envelope;
    const first = effects['chart.update']!(e('u1'), message, new AbortController().signal);
    const shutdown = new AbortController();
    const waiting = effects['chart.update']!(e('u2'), message, shutdown.signal);
    const receipt = effects['delivery.receipt']!(e('r1'), message, new AbortController().signal);
    await new Promise((r) => setImmediate(r));
    expect(started, 'the receipt does not wait for the gate').toEqual(['u1', 'r1']);
    shutdown.abort();
    for (const release of releases.splice(0)) release();
    expect(await first).toEqual({ status: 'done' });
    expect(await waiting).toEqual({ status: 'release' });
    expect(await receipt).toEqual({ status: 'done' });
    expect(started).toEqual(['u1', 'r1']);
  });
});
