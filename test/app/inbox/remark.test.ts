// The background tries of an acknowledged record's `applied` mark that failed at the ack
// (services/app/inbox/remark.ts): when they run, how far apart, how many ids, and what a stop does.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMarkRetry } from '../../../services/app/inbox/remark.ts';
import { captureLogger } from '../../helpers/logs.ts';

const ID = (n: number): string => `0190a000-0000-7000-8000-00000000000${n}`;

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

/** A mark that fails `failures` times per id, then lands; the clock's time of every call. */
function flakyMark(failures: number) {
  const calls: Array<[string, number]> = [];
  const done = new Set<string>();
  const mark = async (id: string): Promise<void> => {
    calls.push([id, Date.now()]);
    if (calls.filter(([c]) => c === id).length <= failures) throw Object.assign(new Error('state table unreachable'), { name: 'TimeoutError' });
    done.add(id);
  };
  return { mark, calls, done };
}

describe('marks of acknowledged records tried again', () => {
  it('tries 1 s after the ack, then at doubling delays, until the mark lands; then says so once', async () => {
    const { mark, calls, done } = flakyMark(2);
    const log = captureLogger('app');
    const retry = createMarkRetry({ mark, logger: log.logger });
    retry.add(ID(1));
    expect(retry.size).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls.map(([, at]) => at)).toEqual([1000, 3000, 7000]);
    expect(done.has(ID(1))).toBe(true);
    expect(retry.size).toBe(0);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(calls).toHaveLength(3);
    const landed = log.entries().filter((e) => e.msg === 'marked the acknowledged envelope applied on a later try');
    // The ack's own try, then three.
    expect(landed).toEqual([expect.objectContaining({ envelopeId: ID(1), tries: 4, level: 30 })]);
  });

  it('never waits more than the longest delay between two tries', async () => {
    const { mark, calls } = flakyMark(Infinity);
    const retry = createMarkRetry({ mark, logger: captureLogger('app').logger, firstDelayMs: 1000, maxDelayMs: 5000 });
    retry.add(ID(1));
    await vi.advanceTimersByTimeAsync(30_000);
    expect(calls.map(([, at]) => at)).toEqual([1000, 3000, 7000, 12_000, 17_000, 22_000, 27_000]);
    retry.stop();
  });

  it('ids due together are tried in the same turn (their marks share a write); a slow try is not started twice', async () => {
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const started: Array<[string, number]> = [];
    const retry = createMarkRetry({
      mark: async (id) => {
        started.push([id, Date.now()]);
        await slow;
      },
      logger: captureLogger('app').logger,
    });
    retry.add(ID(1));
    retry.add(ID(2));
    await vi.advanceTimersByTimeAsync(1000);
    expect(started).toEqual([
      [ID(1), 1000],
      [ID(2), 1000],
    ]);
    // Still in flight a minute on: neither is tried again meanwhile, and nothing spins.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(started).toHaveLength(2);
    expect(vi.getTimerCount()).toBe(0);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(retry.size).toBe(0);
  });

  it('holds at most maxPending ids: past it the oldest is given up, logged with CR_INBOX_MARK_GIVEN_UP, and never tried', async () => {
    const { mark, calls } = flakyMark(0);
    const log = captureLogger('app');
    const retry = createMarkRetry({ mark, logger: log.logger, maxPending: 2 });
    retry.add(ID(1));
    retry.add(ID(2));
    retry.add(ID(2));
    expect(retry.size).toBe(2);
    retry.add(ID(3));
    expect(retry.size).toBe(2);
    expect(log.entries().filter((e) => e.code === 'CR_INBOX_MARK_GIVEN_UP')).toEqual([expect.objectContaining({ envelopeId: ID(1), level: 40 })]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map(([id]) => id).sort()).toEqual([ID(2), ID(3)]);
  });

  it('a stop ends the tries: the ids still waiting are logged with CR_INBOX_MARK_GIVEN_UP, none is tried after it', async () => {
    const { mark, calls } = flakyMark(Infinity);
    const log = captureLogger('app');
    const retry = createMarkRetry({ mark, logger: log.logger });
    retry.add(ID(1));
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1);
    retry.stop();
    retry.add(ID(2));
    expect(retry.size).toBe(0);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(calls).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
    expect(log.entries().filter((e) => e.code === 'CR_INBOX_MARK_GIVEN_UP').map((e) => e.envelopeId)).toEqual([ID(1)]);
  });
});
