// One progress helper for long commands: a bar redrawn in place on a terminal, plain lines
// (at most one every few seconds, and the last) when standard error is not a terminal.

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Writes to standard error. */
  write(text: string): void;
  /** Draw a bar (a terminal) or print plain lines. */
  tty: boolean;
  /** What is being done, e.g. `redrive interface-to-app dlq`. */
  label: string;
  /** Terminal width (bar only); default 80. */
  columns?: number;
  /** Least time between two plain lines, ms; default 2000. */
  lineIntervalMs?: number;
  /** Clock (tests). */
  now?: () => number;
}

/** A running progress display. */
export interface Progress {
  /** Reports `done` of `total` (total may be unknown: 0) and an optional short note (ids and counts only). */
  update(done: number, total: number, note?: string): void;
  /** Ends the display with a last state (clears the bar's line first on a terminal). */
  finish(done: number, total: number, note?: string): void;
}

/** Creates a progress display (see the file comment). */
export function createProgress(options: ProgressOptions): Progress {
  const now = options.now ?? Date.now;
  const interval = options.lineIntervalMs ?? 2000;
  let lastLine = -Infinity;
  let lastDraw = -Infinity;
  let drawn = false;
  const text = (done: number, total: number, note?: string): string =>
    `${options.label}: ${done}${total > 0 ? `/${total}` : ''}${note ? ` ${note}` : ''}`;
  const bar = (done: number, total: number, note?: string): string => {
    const width = Math.max(10, Math.min(40, (options.columns ?? 80) - 40));
    const ratio = total > 0 ? Math.min(1, done / total) : 0;
    const fill = Math.round(ratio * width);
    const line = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${text(done, total, note)}`;
    return line.slice(0, (options.columns ?? 80) - 1);
  };
  return {
    update(done, total, note) {
      const t = now();
      if (options.tty) {
        if (t - lastDraw < 50) return;
        lastDraw = t;
        drawn = true;
        options.write(`\r\x1b[2K${bar(done, total, note)}`);
        return;
      }
      if (t - lastLine < interval) return;
      lastLine = t;
      options.write(`${text(done, total, note)}\n`);
    },
    finish(done, total, note) {
      if (options.tty) {
        options.write(`${drawn ? '\r\x1b[2K' : ''}${bar(done, total, note)}\n`);
        return;
      }
      options.write(`${text(done, total, note)}\n`);
    },
  };
}
