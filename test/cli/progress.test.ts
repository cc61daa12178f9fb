import { describe, expect, it } from 'vitest';
import { createProgress } from '../../services/cli/progress.ts';

function capture(tty: boolean, start = 0) {
  let t = start;
  const written: string[] = [];
  const progress = createProgress({ write: (s) => void written.push(s), tty, label: 'redrive interface-to-app dlq', columns: 100, lineIntervalMs: 2000, now: () => t });
  return { progress, written, advance: (ms: number) => (t += ms) };
}

describe('progress', () => {
  it('on a terminal: one bar redrawn in place, then a last line', () => {
    const c = capture(true);
    c.progress.update(0, 4);
    c.advance(100);
    c.progress.update(2, 4, 'matched 2');
    c.advance(100);
    c.progress.finish(4, 4, 'done');
    expect(c.written).toHaveLength(3);
    for (const w of c.written.slice(0, 2)) expect(w).toMatch(/^\r\x1b\[2K\[[#.]+\] redrive interface-to-app dlq: \d\/4/);
    expect(c.written[1]).toContain(`[${'#'.repeat(20)}${'.'.repeat(20)}]`);
    expect(c.written[2]).toMatch(/^\r\x1b\[2K\[#{40}\] redrive interface-to-app dlq: 4\/4 done\n$/);
    for (const w of c.written) expect(w.replace(/\x1b\[2K|\r|\n/g, '').length).toBeLessThan(100);
  });

  it('not a terminal: plain lines, at most one per interval, and always the last', () => {
    const c = capture(false);
    c.progress.update(1, 10);
    c.advance(500);
    c.progress.update(2, 10);
    c.advance(2000);
    c.progress.update(7, 10);
    c.progress.finish(10, 10, 'done');
    expect(c.written).toEqual(['redrive interface-to-app dlq: 1/10\n', 'redrive interface-to-app dlq: 7/10\n', 'redrive interface-to-app dlq: 10/10 done\n']);
    expect(c.written.join('')).not.toMatch(/\r|\x1b/);
  });
});
