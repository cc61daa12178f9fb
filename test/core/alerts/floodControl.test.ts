import { describe, expect, it } from 'vitest';
import type { AlertFinding, Evaluation } from '../../../services/core/alerts/evaluate.ts';
import { FloodControl } from '../../../services/core/alerts/floodControl.ts';

const q = (messages: number): AlertFinding => ({ condition: 'CareRelayQuarantineNotEmpty', subject: 'interface-to-app', severity: 'warning', facts: { messages } });
const ev = (active: AlertFinding[], evaluated: Evaluation['evaluated'] = new Set(['CareRelayQuarantineNotEmpty'])): Evaluation => ({ active, evaluated });
const states = (ns: { state: string }[]) => ns.map((n) => n.state);

describe('flood control', () => {
  it('one started, no repeat while it holds, one cleared after the quiet period', () => {
    const fc = new FloodControl({ reminderMs: 0, clearAfterMs: 60_000 });
    const out: string[] = [];
    for (let t = 0; t < 100; t++) out.push(...states(fc.update(ev([q(t + 1)]), t * 1000)));
    expect(out).toEqual(['started']);
    expect(states(fc.update(ev([]), 100_000))).toEqual([]);
    expect(states(fc.update(ev([]), 159_999))).toEqual([]);
    const cleared = fc.update(ev([]), 160_000);
    expect(states(cleared)).toEqual(['cleared']);
    expect(cleared[0]).toMatchObject({ since: new Date(0).toISOString(), facts: { messages: 100 } });
    expect(fc.active).toEqual([]);
  });

  it('a flapping condition inside the quiet period stays one alert (no storm when a destination is slow)', () => {
    const fc = new FloodControl({ reminderMs: 0, clearAfterMs: 30_000 });
    const out: string[] = [];
    for (let t = 0; t < 600; t++) out.push(...states(fc.update(ev(t % 20 < 10 ? [q(1)] : []), t * 1000)));
    expect(out).toEqual(['started']);
  });

  it('reminds at the interval while it holds', () => {
    const fc = new FloodControl({ reminderMs: 3_600_000, clearAfterMs: 0 });
    const out: string[] = [];
    for (let m = 0; m < 180; m++) out.push(...states(fc.update(ev([q(1)]), m * 60_000)));
    expect(out).toEqual(['started', 'reminder', 'reminder']);
  });

  it('keeps the state of a condition that could not be judged (SQS unreachable)', () => {
    const fc = new FloodControl({ reminderMs: 0, clearAfterMs: 0 });
    expect(states(fc.update(ev([q(1)]), 0))).toEqual(['started']);
    expect(states(fc.update(ev([], new Set()), 1000))).toEqual([]);
    expect(fc.active).toHaveLength(1);
    expect(states(fc.update(ev([]), 2000))).toEqual(['cleared']);
  });

  it('subjects are separate alerts', () => {
    const fc = new FloodControl({ reminderMs: 0, clearAfterMs: 0 });
    const other: AlertFinding = { ...q(1), subject: 'app-to-interface' };
    expect(fc.update(ev([q(1), other]), 0).map((n) => n.subject)).toEqual(['interface-to-app', 'app-to-interface']);
  });

  it('refuses a negative interval instead of clamping it', () => {
    expect(() => new FloodControl({ reminderMs: -1, clearAfterMs: 0 })).toThrow(/reminderMs and clearAfterMs must be numbers ≥ 0/);
  });
});
